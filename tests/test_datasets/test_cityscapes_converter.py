# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/dataset_converters/cityscapes.py on a tiny fake Cityscapes tree,
checked against a direct cityscapesscripts run, then loaded with
CityscapesPanopticDataset."""
import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmpanoptic_plus.datasets.cityscapes_panoptic import CITYSCAPES_CLASSES
from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

pytest.importorskip('cityscapesscripts')
register_all_modules()

REPO = Path(__file__).resolve().parents[2]
FILES = {
    'train': ['aachen_000000_000019', 'aachen_000001_000019',
              'bochum_000000_000313'],
    'val': ['frankfurt_000000_000294'],
}
H, W = 16, 24


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'cityscapes_converter',
        REPO / 'tools' / 'dataset_converters' / 'cityscapes.py')
    module = importlib.util.module_from_spec(spec)
    # registered so that worker processes can unpickle its functions
    sys.modules['cityscapes_converter'] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules['cityscapes_converter']


def instance_ids(shift: int) -> np.ndarray:
    """A (H, W) Cityscapes *_instanceIds.png content."""
    ids = np.full((H, W), 23, dtype=np.uint16)  # sky
    ids[6:10, :12] = 11  # building
    ids[6:10, 12:] = 21  # vegetation
    ids[10:] = 7  # road
    ids[11:14, 2 + shift:7 + shift] = 26000  # car
    ids[11:15, 9:13] = 26001  # car
    ids[12:15, 15:19] = 26  # crowd of cars
    ids[7:10, 20:22] = 24000  # person
    ids[15, :4] = 0  # unlabeled: ignored in evaluation
    ids[0, :3] = 1  # ego vehicle: ignored in evaluation
    return ids


@pytest.fixture(scope='module')
def city_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('cityscapes')
    rng = np.random.default_rng(0)
    for split, stems in FILES.items():
        for shift, stem in enumerate(stems):
            city = stem.split('_')[0]
            gt_dir = root / 'gtFine' / split / city
            img_dir = root / 'leftImg8bit' / split / city
            gt_dir.mkdir(parents=True, exist_ok=True)
            img_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(gt_dir / f'{stem}_gtFine_instanceIds.png'),
                        instance_ids(shift))
            cv2.imwrite(str(img_dir / f'{stem}_leftImg8bit.png'),
                        rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return root


def test_matches_cityscapesscripts(converter, city_root, tmp_path):
    from cityscapesscripts.preparation.createPanopticImgs import \
        convert2panoptic
    out = tmp_path / 'ours'
    outputs = converter.convert_cityscapes_panoptic(
        str(city_root), str(out), nproc=1, chunk_size=2)
    assert sorted(outputs) == [
        'train_label', 'train_train', 'val_label', 'val_train'
    ]
    oracle = tmp_path / 'oracle'
    oracle.mkdir()
    with contextlib.redirect_stdout(io.StringIO()):
        for use_train_id in (True, False):
            convert2panoptic(
                str(city_root / 'gtFine'), str(oracle), use_train_id,
                ['train', 'val'])
    ours = {p.relative_to(out): p.read_bytes() for p in out.rglob('*.*')}
    theirs = {
        p.relative_to(oracle): p.read_bytes()
        for p in oracle.rglob('*.*')
    }
    assert len(theirs) == 4 + 2 * 4  # JSONs + PNGs
    assert ours == theirs


def test_parallel_default_out_dir(converter, city_root, tmp_path):
    import shutil
    root = tmp_path / 'cs'
    shutil.copytree(city_root, root)
    assert converter.main([str(root), '--nproc', '2', '--splits', 'val',
                           '--id-types', 'train']) == 0
    assert (root / 'gtFine' / 'cityscapes_panoptic_val_trainId.json').is_file()
    assert (root / 'gtFine' / 'cityscapes_panoptic_val_trainId' /
            'frankfurt_000000_000294_gtFine_panoptic.png').is_file()
    assert not (root / 'gtFine' / 'cityscapes_panoptic_val.json').exists()
    # no temporary folders left behind
    assert sorted(p.name for p in (root / 'gtFine').iterdir()) == [
        'cityscapes_panoptic_val_trainId',
        'cityscapes_panoptic_val_trainId.json', 'train', 'val'
    ]


@pytest.mark.parametrize('suffix', ['_trainId', ''])
def test_load_converted(converter, city_root, tmp_path, suffix):
    out = tmp_path / 'out'
    converter.convert_cityscapes_panoptic(
        str(city_root), str(out), splits=['train'])
    dataset = DATASETS.build(
        dict(
            type='CityscapesPanopticDataset',
            data_root=str(city_root),
            ann_file=str(out / f'cityscapes_panoptic_train{suffix}.json'),
            data_prefix=dict(
                img='leftImg8bit/train/',
                seg=str(out / f'cityscapes_panoptic_train{suffix}')),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticAnnotations'),
                dict(type='PackPanopticInputs')
            ]))
    assert len(dataset) == 3
    classes = dataset.metainfo['classes']
    label_of = {c[1]: classes.index(c[0]) for c in CITYSCAPES_CLASSES}
    for index, stem in enumerate(FILES['train']):
        sample = dataset[index]['data_samples']
        assert sample.img_id == stem
        assert sample.img_path.endswith(
            f'leftImg8bit/train/{stem.split("_")[0]}/{stem}_leftImg8bit.png')
        ids = instance_ids(index).astype(np.int64)
        label_ids = np.where(ids >= 1000, ids // 1000, ids)
        expected = np.vectorize(lambda i: label_of.get(i, 255))(label_ids)
        np.testing.assert_array_equal(sample.gt_sem_seg.sem_seg[0].numpy(),
                                      expected)
        # segments come in id order: 24000 (person), 26000, 26001 (cars)
        assert sample.gt_instances.labels.tolist() == [
            classes.index('person')
        ] + [classes.index('car')] * 2
        assert sample.ignored_instances.labels.tolist() == [
            classes.index('car')
        ]
        np.testing.assert_array_equal(
            sample.ignored_instances.masks.masks[0], ids == 26)


def test_missing_gtfine(converter, tmp_path):
    with pytest.raises(FileNotFoundError, match='gtFine'):
        converter.convert_cityscapes_panoptic(str(tmp_path))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert converter.main([str(tmp_path)]) == 1
    assert 'gtFine' in stderr.getvalue()


def test_missing_split_or_files(converter, tmp_path):
    (tmp_path / 'gtFine' / 'train' / 'aachen').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='instanceIds'):
        converter.convert_cityscapes_panoptic(str(tmp_path),
                                              splits=['train'])
    with pytest.raises(FileNotFoundError, match='gtFine/val'):
        converter.convert_cityscapes_panoptic(str(tmp_path), splits=['val'])
