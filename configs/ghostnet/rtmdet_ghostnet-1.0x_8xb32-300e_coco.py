# RTMDet-tiny's neck and head (CSPNeXtPAFPN, RTMDetSepBNHead, 96 channels)
# on GhostNet-1.0x instead of CSPNeXt-tiny, COCO 2017, RTMDet's 300e recipe.
# Taps: the last block at strides 8, 16 and 32 (out_indices 4, 6, 8: 40, 112
# and 160 channels; CSPNeXt-tiny gives 96, 192 and 384). RTMDet normalises
# BGR pixels with CSPNeXt's statistics; GhostNet's ImageNet weights need
# ImageNet's RGB normalisation, hence mean/std/bgr_to_rgb below.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'

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
