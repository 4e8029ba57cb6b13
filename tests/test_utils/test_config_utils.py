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
