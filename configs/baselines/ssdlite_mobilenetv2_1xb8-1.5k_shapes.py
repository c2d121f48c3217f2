# Baseline for the GhostShapes comparison: the same SSDLite, data and
# schedule as ../ghostnet/ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py, with
# MMDetection's MobileNetV2 1.0x (from scratch) tapped as MMDetection's
# SSDLite taps it: stage 4 (stride 16, 96 channels) and the final conv
# (stride 32, 1280 channels).
_base_ = '../ghostnet/ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(4, 7),
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=(96, 1280), out_channels=(96, 1280, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(96, 1280, 512, 256, 256, 128)))
