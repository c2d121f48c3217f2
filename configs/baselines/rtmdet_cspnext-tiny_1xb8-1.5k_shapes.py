# Baseline for the GhostShapes comparison: the same RTMDet-tiny neck and
# head, data and schedule as ../ghostnet/rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py,
# with RTMDet-tiny's own backbone, MMDetection's CSPNeXt-tiny (from
# scratch; strides 8, 16, 32 with 96, 192, 384 channels).
_base_ = '../ghostnet/rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.375,
        channel_attention=True,
        norm_cfg=dict(type='BN'),
        act_cfg=dict(type='SiLU', inplace=True),
        init_cfg=None),
    neck=dict(in_channels=[96, 192, 384]))
