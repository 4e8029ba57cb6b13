# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The metafiles (configs/*/metafile.yml): every model config in configs/
appears in one, and every entry names an existing config, a collection of
its file and at least one metric."""
import ast
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
REPO_ROOT = CONFIGS.parent


def is_model_config(path: Path, root: Path = CONFIGS) -> bool:
    """A config file outside ``_base_`` folders (under ``root``) that
    defines or inherits a model: it assigns ``model`` or ``_base_`` at the
    top level (registries such as configs/compare/methods.py do neither)."""
    if '_base_' in path.relative_to(root).parts:
        return False
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = (node.targets
                       if isinstance(node, ast.Assign) else [node.target])
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return bool(names & {'model', '_base_'})


def metafiles():
    return sorted(CONFIGS.glob('*/metafile.yml'))


def entries():
    for metafile in metafiles():
        for model in yaml.safe_load(metafile.read_text())['Models']:
            yield metafile, model


def test_is_model_config_hand_made(tmp_path):
    root = tmp_path / 'configs'
    (root / 'm' / '_base_').mkdir(parents=True)
    cases = {
        'm/a.py': "_base_ = './b.py'\nmodel = dict(x=1)\n",
        'm/b.py': "model = dict(type='X')\n",
        'm/registry.py': '# _base_ = [...]\nmethods = [dict(model=1)]\n',
        'm/_base_/c.py': "model = dict(type='X')\n",
    }
    for name, text in cases.items():
        (root / name).write_text(text)
    found = {name for name in cases if is_model_config(root / name, root)}
    assert found == {'m/a.py', 'm/b.py'}


def test_every_model_config_is_in_a_metafile():
    listed = {model['Config'] for _, model in entries()}
    configs = {
        str(path.relative_to(REPO_ROOT))
        for path in CONFIGS.rglob('*.py') if is_model_config(path)
    }
    assert 'configs/pisr/maskformer_r50_ade20k.py' in configs
    assert 'configs/compare/methods.py' not in configs
    missing = sorted(configs - listed)
    assert not missing, f'model configs in no metafile: {missing}'


@pytest.mark.parametrize('metafile', metafiles(), ids=lambda p: p.parent.name)
def test_metafile_entries_are_valid(metafile):
    data = yaml.safe_load(metafile.read_text())
    collections = {c['Name'] for c in data['Collections']}
    for collection in data['Collections']:
        assert (REPO_ROOT / collection['README']).is_file(), collection
    for model in data['Models']:
        assert model['In Collection'] in collections, model['Name']
        assert (REPO_ROOT / model['Config']).is_file(), model['Config']
        assert model['Config'].startswith(f'configs/{metafile.parent.name}/')
        for result in model['Results']:
            assert result['Metrics'], model['Name']


def test_model_names_are_unique():
    names = [model['Name'] for _, model in entries()]
    assert len(names) == len(set(names)), sorted(
        n for n in set(names) if names.count(n) > 1)
