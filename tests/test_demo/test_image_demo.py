# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""demo/image_demo.py (CLI) and demo/run_default_demo.py (flow, no real
training)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / 'tests' / 'test_apis' / 'data' / \
    'tiny_panoptic_fpn.py'
CLASSES = ['disc', 'box', 'sky', 'ground']
SEGMENT_KEYS = {
    'id', 'category_id', 'category_name', 'label', 'isthing', 'iscrowd',
    'area', 'bbox'
}


def load_demo_module(name):
    spec = importlib.util.spec_from_file_location(
        f'demo_{name}', REPO_ROOT / 'demo' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def input_dir(tmp_path):
    folder = tmp_path / 'inputs'
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'good_a.png'),
                rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'good_b.jpg'),
                rng.integers(0, 256, (24, 20), dtype=np.uint8))  # gray
    (folder / 'bad.jpg').write_bytes(b'this is not a jpeg')
    (folder / 'notes.txt').write_text('not an image: ignored')
    return folder


def check_outputs(out_dir, stem, height, width):
    """The three outputs of one image agree with each other."""
    vis = cv2.imread(str(out_dir / 'vis' / f'{stem}.png'))
    assert vis.shape == (height, width, 3)
    record = json.loads((out_dir / 'preds' / f'{stem}.json').read_text())
    assert record['file_name'] == f'{stem}.png'
    assert (record['height'], record['width']) == (height, width)
    rgb = cv2.imread(str(out_dir / 'preds' / f'{stem}.png'))[..., ::-1]
    rgb = rgb.astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    assert ids.shape == (height, width)
    infos = record['segments_info']
    assert sorted(np.unique(ids[ids > 0]).tolist()) == \
        [info['id'] for info in infos]
    for info in infos:
        assert set(info) == SEGMENT_KEYS
        ys, xs = np.nonzero(ids == info['id'])
        assert info['area'] == len(ys)
        assert info['bbox'] == [
            xs.min(), ys.min(), xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1
        ]
        assert info['category_name'] == CLASSES[info['label']]
        assert info['isthing'] == (info['label'] < 2)
    return record


def test_cli_on_folder_with_a_bad_file(input_dir, tmp_path):
    out_dir = tmp_path / 'out'
    result = subprocess.run(
        [
            sys.executable, 'demo/image_demo.py',
            str(input_dir),
            str(TINY_CONFIG), '--out-dir',
            str(out_dir), '--score-thr', '0.1'
        ],
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'RANDOMLY INITIALISED' in result.stderr
    bad_lines = [
        line for line in result.stderr.splitlines() if 'bad.jpg' in line
    ]
    assert len(bad_lines) == 1 and 'Cannot decode' in bad_lines[0]
    assert 'Processed 2/3 images' in result.stdout
    check_outputs(out_dir, 'good_a', 40, 56)
    record = check_outputs(out_dir, 'good_b', 24, 20)
    assert record['image_path'] == str(input_dir / 'good_b.jpg')
    assert sorted(os.listdir(out_dir / 'vis')) == ['good_a.png', 'good_b.png']


def test_nothing_processed_gives_exit_code_1(tmp_path, capsys):
    image_demo = load_demo_module('image_demo')
    (tmp_path / 'bad.png').write_bytes(b'')
    status = image_demo.main([
        str(tmp_path / 'bad.png'),
        str(TINY_CONFIG), '--out-dir',
        str(tmp_path / 'out')
    ])
    assert status == 1
    assert 'empty' in capsys.readouterr().err
    assert image_demo.main([
        str(tmp_path / 'missing.png'),
        str(TINY_CONFIG), '--out-dir',
        str(tmp_path / 'out')
    ]) == 1
    assert 'No such file' in capsys.readouterr().err
    # a missing config is an error message too, not a traceback
    cv2.imwrite(str(tmp_path / 'ok.png'), np.zeros((8, 8, 3), np.uint8))
    assert image_demo.main(
        [str(tmp_path / 'ok.png'),
         str(tmp_path / 'no_config.py')]) == 1
    assert 'config file not found' in capsys.readouterr().err


def test_glob_and_clashing_stems(tmp_path):
    image_demo = load_demo_module('image_demo')
    rng = np.random.default_rng(1)
    for name in ('scene.png', 'scene.jpg', 'other.bmp'):
        cv2.imwrite(str(tmp_path / name),
                    rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    pattern = str(tmp_path / 'scene.*')
    assert image_demo.collect_inputs(pattern) == [
        str(tmp_path / 'scene.jpg'),
        str(tmp_path / 'scene.png')
    ]
    assert image_demo.unique_stems(['a/x.png', 'b/x.png', 'y.jpg']) == \
        ['x_png', 'x_png_1', 'y']
    out_dir = tmp_path / 'out'
    assert image_demo.main(
        [pattern, str(TINY_CONFIG), '--out-dir',
         str(out_dir)]) == 0
    assert sorted(os.listdir(out_dir / 'preds')) == [
        'scene_jpg.json', 'scene_jpg.png', 'scene_png.json', 'scene_png.png'
    ]


class TestRunDefaultDemo:

    def test_find_checkpoint(self, tmp_path):
        demo = load_demo_module('run_default_demo')
        assert demo.find_checkpoint(str(tmp_path)) is None
        (tmp_path / 'iter_5.pth').write_bytes(b'x')
        (tmp_path / 'last_checkpoint').write_text(
            str(tmp_path / 'iter_5.pth'))
        assert demo.find_checkpoint(str(tmp_path)) == \
            str(tmp_path / 'iter_5.pth')
        # written relative to another cwd: found next to the pointer
        (tmp_path / 'last_checkpoint').write_text('work_dirs/x/iter_5.pth')
        assert demo.find_checkpoint(str(tmp_path)) == \
            os.path.join(str(tmp_path), 'iter_5.pth')
        (tmp_path / 'last_checkpoint').write_text(
            str(tmp_path / 'gone.pth'))
        assert demo.find_checkpoint(str(tmp_path)) is None

    def test_trains_when_needed_then_runs_image_demo(self, tmp_path,
                                                     monkeypatch):
        """The whole flow with training replaced by saving the tiny model:
        data generation, the train command, checkpoint pick-up, image
        demo on the bundled samples."""
        demo = load_demo_module('run_default_demo')
        from mmpanoptic_plus.apis import init_panoptic_model
        model = init_panoptic_model(str(TINY_CONFIG))
        calls = []

        def fake_train(command, cwd):
            calls.append(command)
            work_dir = Path(command[command.index('--work-dir') + 1])
            work_dir.mkdir(parents=True)
            torch.save(dict(state_dict=model.state_dict()),
                       str(work_dir / 'iter_3.pth'))
            (work_dir / 'last_checkpoint').write_text(
                str(work_dir / 'iter_3.pth'))
            return 1  # as if the final validation failed: still usable

        monkeypatch.setattr(demo.subprocess, 'call', fake_train)
        monkeypatch.setattr(demo, 'SYNTHETIC_SIZE', (32, 32))
        argv = [
            '--config',
            str(TINY_CONFIG), '--checkpoint', 'none', '--work-dir',
            str(tmp_path / 'work'), '--data-root',
            str(tmp_path / 'data'), '--num-train', '2', '--num-val', '1',
            '--train-iters', '3', '--out-dir',
            str(tmp_path / 'out')
        ]
        assert demo.main(argv) == 0
        assert len(calls) == 1
        command = calls[0]
        assert command[1].endswith(os.path.join('tools', 'train.py'))
        assert 'train_cfg.max_iters=3' in command
        assert f'train_dataloader.dataset.data_root={tmp_path}/data/' in \
            command
        assert (tmp_path / 'data' / 'annotations' /
                'panoptic_train.json').is_file()
        samples = sorted(p.stem for p in (REPO_ROOT / 'demo').iterdir()
                         if p.suffix in ('.png', '.jpg'))
        assert len(samples) >= 2
        assert sorted(p.stem for p in (tmp_path / 'out' / 'vis').iterdir()
                      ) == samples
        # second run: the checkpoint is reused, nothing is trained
        assert demo.main(argv) == 0
        assert len(calls) == 1


def test_score_thr_reaches_the_model_config(tmp_path, monkeypatch):
    image_demo = load_demo_module('image_demo')
    import mmpanoptic_plus.apis as apis
    real_init = apis.init_panoptic_model
    seen = {}

    def spy(config, checkpoint=None, device='cpu', cfg_options=None):
        seen['cfg_options'] = cfg_options
        return real_init(config, checkpoint, device, cfg_options)

    monkeypatch.setattr(apis, 'init_panoptic_model', spy)
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((16, 16, 3), np.uint8))
    assert image_demo.main([
        str(tmp_path / 'a.png'),
        str(TINY_CONFIG), '--score-thr', '0.42', '--out-dir',
        str(tmp_path / 'out')
    ]) == 0
    assert seen['cfg_options'] == {'model.test_cfg.rcnn.score_thr': 0.42}


def test_score_thr_of_a_single_stage_model(tmp_path, monkeypatch):
    image_demo = load_demo_module('image_demo')
    import mmpanoptic_plus.apis as apis
    seen = {}

    def spy(config, checkpoint=None, device='cpu', cfg_options=None):
        seen['cfg_options'] = cfg_options
        raise ValueError('stop here')

    monkeypatch.setattr(apis, 'init_panoptic_model', spy)
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((16, 16, 3), np.uint8))
    config = REPO_ROOT / 'configs' / 'realtime_panoptic' / \
        'rtp_r18_synthetic.py'
    assert image_demo.main([
        str(tmp_path / 'a.png'),
        str(config), '--score-thr', '0.25', '--out-dir',
        str(tmp_path / 'out')
    ]) == 1
    assert seen['cfg_options'] == {'model.test_cfg.score_thr': 0.25}
