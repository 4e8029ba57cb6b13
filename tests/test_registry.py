# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The package's import check, registries and default scope."""
import subprocess
import sys
from importlib import metadata

import pytest

import mmpanoptic_plus
from mmpanoptic_plus.registry import MODELS


def test_check_dependencies_names_what_to_install(monkeypatch):
    real_version = metadata.version

    def fake_version(dist):
        if dist == 'mmcv':
            return '2.2.0'  # mmdet 3.3 / mmseg 1.2 refuse it
        if dist == 'mmsegmentation':
            raise metadata.PackageNotFoundError(dist)
        return real_version(dist)

    monkeypatch.setattr(metadata, 'version', fake_version)
    with pytest.raises(ImportError) as err:
        mmpanoptic_plus.check_dependencies()
    message = str(err.value)
    assert 'mmcv==2.2.0 is installed' in message
    assert '2.0.0 <= version < 2.2.0' in message
    assert 'mmsegmentation (mmseg) is not installed' in message
    assert 'make install' in message and 'mmcv==2.1.0' in message


def test_check_dependencies_passes_on_pinned_stack():
    mmpanoptic_plus.check_dependencies()


def test_register_all_modules_fills_the_lazy_parent_registries():
    # mmdet's registries are filled lazily: importing our registry does not
    # import mmdet.models, and a parent lookup never triggers that import (the
    # trap DESIGN.md notes). register_all_modules() imports it, so ResNet
    # resolves in our scope in a fresh interpreter.
    code = '''
import sys
from mmengine import DefaultScope
from mmpanoptic_plus.registry import MODELS
print('before', 'mmdet.models' in sys.modules, 'mmseg.models' in sys.modules)
from mmpanoptic_plus.utils import register_all_modules
register_all_modules()
print('after', 'mmdet.models' in sys.modules, 'mmseg.models' in sys.modules)
print(DefaultScope.get_current_instance().scope_name)
m = MODELS.build(dict(type='ResNet', depth=18))
print(type(m).__module__)
'''
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == [
        'before', 'False', 'False', 'after', 'True', 'True', 'mmpanoptic_plus',
        'mmdet.models.backbones.resnet'
    ]


def test_nested_mmseg_types_resolve_to_the_class_meant():
    from mmdet.models.losses import CrossEntropyLoss as DetCE
    from mmseg.models.losses import CrossEntropyLoss as SegCE

    from mmpanoptic_plus.utils import register_all_modules
    register_all_modules()
    # The trap: a bare name inside an mmseg subtree resolves in *our* scope
    # and silently becomes mmdet's loss (which has no loss_name).
    assert type(MODELS.build(dict(type='CrossEntropyLoss'))) is DetCE
    seg_loss = MODELS.build(dict(type='mmseg.CrossEntropyLoss'))
    assert type(seg_loss) is SegCE and seg_loss.loss_name == 'loss_ce'
