# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from mmpanoptic_plus.utils import drop_pretrained_init


def test_drop_pretrained_init():
    model_cfg = dict(
        backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='x')),
        head=dict(init_cfg=[
            dict(type='Normal', std=0.01),
            dict(type='Pretrained', checkpoint='y')
        ]),
        neck=dict(init_cfg=[dict(type='Pretrained', checkpoint='w')]),
        others=[dict(init_cfg=dict(type='Pretrained', checkpoint='z'))],
        kept=dict(init_cfg=dict(type='Xavier')))
    drop_pretrained_init(model_cfg)
    assert model_cfg['backbone']['init_cfg'] is None
    assert model_cfg['head']['init_cfg'] == [dict(type='Normal', std=0.01)]
    assert model_cfg['neck']['init_cfg'] is None
    assert model_cfg['others'][0]['init_cfg'] is None
    assert model_cfg['kept']['init_cfg'] == dict(type='Xavier')


def test_merge_test_cfg_applies_overrides_in_order_and_refuses_unknown():
    import pytest

    from mmpanoptic_plus.utils import merge_test_cfg
    defaults = dict(score_thr=0.05, max_per_img=100)
    merged = merge_test_cfg(defaults, None, dict(score_thr=0.3), {},
                            dict(score_thr=0.5, max_per_img=7))
    assert merged == dict(score_thr=0.5, max_per_img=7)
    assert defaults == dict(score_thr=0.05, max_per_img=100)  # not mutated
    assert merge_test_cfg(defaults) == defaults
    with pytest.raises(KeyError, match=r"unknown FOO test_cfg keys \['scor'\]"):
        merge_test_cfg(defaults, dict(scor=1), name='FOO')
    with pytest.raises(KeyError, match=r"^\"unknown test_cfg keys"):
        merge_test_cfg(defaults, dict(scor=1))
