# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import hashlib
import importlib.util
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'model_converters' / \
    'publish_model.py'


def _load_tool(_=None):
    spec = importlib.util.spec_from_file_location('publish_model_tool',
                                                  str(TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 2, 1))


def _runner_like_checkpoint(path, model):
    """What mmengine's runner saves: weights, optimizer state, a meta with
    numpy values."""
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    torch.save(
        dict(
            meta=dict(iter=7, mmengine_version='0.10.7', cfg='x = 1',
                      seed=np.int64(3), hook_msgs=dict(a=np.zeros(2))),
            state_dict=model.state_dict(),
            optimizer=optimizer.state_dict(),
            message_hub=dict(log_scalars=dict())), path)


@pytest.mark.parametrize('fp16', [False, True])
def test_publish_strips_and_loads(tmp_path, fp16):
    tool = _load_tool('model_converters/publish_model.py')
    model = _tiny_model()
    source = tmp_path / 'iter_7.pth'
    _runner_like_checkpoint(source, model)
    out = tool.main([str(source), str(tmp_path / 'release' / 'tiny.pth')] +
                    (['--fp16'] if fp16 else []))
    # name carries the first 8 hex digits of the file's SHA-256
    with open(out, 'rb') as file:
        sha = hashlib.sha256(file.read()).hexdigest()
    assert osp.basename(out) == f'tiny-{sha[:8]}.pth'
    assert osp.getsize(out) < osp.getsize(source)
    # only plain values: loads without the runner allow-list
    published = torch.load(out, weights_only=True)
    assert set(published) == {'meta', 'state_dict'}
    assert published['meta'] == dict(
        iter=7, mmengine_version='0.10.7', cfg='x = 1', fp16=fp16)
    state = published['state_dict']
    assert state['1.num_batches_tracked'].dtype == torch.int64
    assert state['0.weight'].dtype == (torch.float16 if fp16 else
                                       torch.float32)
    # a fresh float32 model loads it; weights equal up to fp16 rounding
    fresh = _tiny_model()
    for param in fresh.parameters():
        nn.init.zeros_(param)
    load_checkpoint(fresh, out, map_location='cpu', strict=True)
    for key, value in model.state_dict().items():
        loaded = fresh.state_dict()[key]
        assert loaded.dtype == value.dtype
        expected = value.half().to(value.dtype) if (
            fp16 and value.is_floating_point()) else value
        torch.testing.assert_close(loaded, expected, rtol=0, atol=0)


def test_publish_bad_input(tmp_path):
    tool = _load_tool('model_converters/publish_model.py')
    with pytest.raises(FileNotFoundError, match='not found'):
        tool.publish_checkpoint(str(tmp_path / 'missing.pth'),
                                str(tmp_path / 'out.pth'))
    bad = tmp_path / 'bad.pth'
    torch.save(dict(meta=dict(iter=1)), bad)
    with pytest.raises(ValueError, match='no state_dict'):
        tool.publish_checkpoint(str(bad), str(tmp_path / 'out.pth'))


def _write_config(path, dataset):
    path.write_text(f'test_dataloader = dict(dataset={dataset!r})\n')
    return str(path)


def test_publish_stores_dataset_meta_from_config(tmp_path,
                                                 synthetic_dataset_meta):
    # the expected classes and colours are written out by hand (conftest),
    # not read from SyntheticPanopticDataset.METAINFO, which the tool uses
    tool = _load_tool()
    source = tmp_path / 'iter_7.pth'
    _runner_like_checkpoint(source, _tiny_model())
    config = _write_config(
        tmp_path / 'tiny_synthetic.py',
        dict(type='SyntheticPanopticDataset', data_root='no/such/root/'))
    out = tool.main([
        str(source),
        str(tmp_path / 'tiny.pth'), '--fp16', '--config', config
    ])
    published = torch.load(out, weights_only=True)  # plain values only
    assert published['meta']['dataset_meta'] == synthetic_dataset_meta
    assert published['meta']['iter'] == 7 and published['meta']['fp16']
    # the config's metainfo overrides the class METAINFO, through wrappers
    config = _write_config(
        tmp_path / 'renamed.py',
        dict(
            type='RepeatDataset',
            times=2,
            dataset=dict(
                type='SyntheticPanopticDataset',
                metainfo=dict(
                    classes=('a', 'b', 'c', 'd', 'e'),
                    thing_classes=('a', 'b', 'c'),
                    stuff_classes=('d', 'e')))))
    out = tool.publish_checkpoint(
        str(source), str(tmp_path / 'renamed.pth'), config=config)
    dataset_meta = torch.load(out, weights_only=True)['meta']['dataset_meta']
    assert dataset_meta == dict(
        synthetic_dataset_meta,
        classes=('a', 'b', 'c', 'd', 'e'),
        thing_classes=('a', 'b', 'c'),
        stuff_classes=('d', 'e'))


def test_publish_keeps_the_checkpoint_dataset_meta(tmp_path):
    tool = _load_tool()
    source = tmp_path / 'iter_7.pth'
    model = _tiny_model()
    # as mmengine's runner saves it: the training set's metainfo, with
    # keys the release drops and numpy values it turns into plain ones
    torch.save(
        dict(
            meta=dict(
                iter=7,
                dataset_meta=dict(
                    classes=['x', 'y'],
                    thing_classes=['x'],
                    stuff_classes=['y'],
                    palette=np.array([[1, 2, 3], [4, 5, 6]]),
                    cat_ids=[7, 9])),
            state_dict=model.state_dict()), source)
    config = _write_config(tmp_path / 'synthetic.py',
                           dict(type='SyntheticPanopticDataset'))
    out = tool.publish_checkpoint(
        str(source), str(tmp_path / 'xy.pth'), config=config)
    published = torch.load(out, weights_only=True)
    assert published['meta']['dataset_meta'] == dict(
        classes=('x', 'y'),
        thing_classes=('x', ),
        stuff_classes=('y', ),
        palette=[(1, 2, 3), (4, 5, 6)])
    assert all(
        type(c) is int
        for colour in published['meta']['dataset_meta']['palette']
        for c in colour)
    # weights untouched
    for key, value in model.state_dict().items():
        assert torch.equal(published['state_dict'][key], value)


def test_publish_without_dataset_meta_warns(tmp_path):
    tool = _load_tool()
    source = tmp_path / 'bare.pth'
    torch.save(_tiny_model().state_dict(), source)
    with pytest.warns(UserWarning, match='no dataset_meta'):
        out = tool.publish_checkpoint(
            str(source), str(tmp_path / 'bare_out.pth'), add_hash=False)
    assert 'dataset_meta' not in torch.load(out, weights_only=True)['meta']
