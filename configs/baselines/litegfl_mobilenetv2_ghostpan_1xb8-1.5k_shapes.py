# Baseline for the GhostShapes comparison: the same GhostPAN neck,
# LiteGFLHead, data and schedule as
# ../ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py, with
# MMDetection's MobileNetV2 1.0x (from scratch) tapped at strides 8, 16, 32
# (32, 96 and 320 channels).
_base_ = '../ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 96, 320]))
