# YOLOX head and PAFPN on GhostNet-1.0x, modelled on MMDetection's YOLOX-tiny
# (its 96-channel neck and head, 416 test size, 300e schedule). YOLOX trains
# CSPDarknet from scratch on raw pixels; the GhostNet ImageNet weights need
# their normalization, hence mean/std/bgr_to_rgb below.
_base_ = 'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(4, 6, 8),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[40, 112, 160]))
