# SSDLite on GhostNetV2-1.0x: the GhostNet-1.0x config with GhostNetV2 as the
# backbone (same output channels and strides). Convert the ImageNet weights
# once with tools/model_converters/ghostnet_to_mmdet.py --version v2.
_base_ = './ssdlite_ghostnet-1.0x_8xb24-600e_coco.py'

pretrained = 'checkpoints/ghostnetv2-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(type='GhostNetV2', init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
