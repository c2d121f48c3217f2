# RetinaNet + GhostNetV3-1.0x + FPN, 1x schedule, COCO 2017: the GhostNet-1.0x
# config with GhostNetV3 as the backbone (same output channels and strides).
# Convert the ImageNet weights once (timm's ghostnetv3_100 or the official
# file) with
#   python tools/model_converters/ghostnet_to_mmdet.py --version v3 \
#       WEIGHTS checkpoints/ghostnetv3-1.0x_imagenet_mmdet.pth
_base_ = './retinanet_ghostnet-1.0x_fpn_1x_coco.py'

pretrained = 'checkpoints/ghostnetv3-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(type='GhostNetV3', init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
