# Baseline for the GhostShapes comparison: the same RetinaNet, data and
# schedule as ../ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py, with
# MMDetection's ResNet-18 (from scratch) tapped at strides 8, 16, 32.
_base_ = '../ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[128, 256, 512]))
