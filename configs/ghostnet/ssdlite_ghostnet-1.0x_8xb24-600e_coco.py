# SSDLite (depthwise SSD neck and head) on GhostNet-1.0x at 320x320, COCO
# 2017: MMDetection's SSDLite-MobileNetV2 config with GhostNet in place of
# MobileNetV2. Taps as MobileNetV2's there: the last block at stride 16
# (out_indices 6: 112 channels, where MobileNetV2 gives 96) and the final
# 1x1 conv at stride 32 (index 9: 960 channels, MobileNetV2's 1280); the SSD
# neck adds its four extra levels after them. The base trains MobileNetV2
# from scratch; here the backbone starts from GhostNet's ImageNet weights (as
# PaddleDetection's SSDLite-GhostNet does), and the base's data preprocessor
# already normalises RGB input as ImageNet did.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(6, 9),
        # The base's BN settings (TensorFlow's SSDLite values).
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=(112, 960), out_channels=(112, 960, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(112, 960, 512, 256, 256, 128)))
