# YOLOv3 + GhostNetV2-1.0x, COCO 2017 (8xb24-320-300e): the GhostNet-1.0x config
# with GhostNetV2 as the backbone, for the comparison of the GhostNetV2 paper
# (YOLOv3 with MobileNetV2, MobileNetV3, GhostNet and GhostNetV2).
_base_ = './yolov3_ghostnet-1.0x_8xb24-320-300e_coco.py'

pretrained = 'checkpoints/ghostnetv2-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(type='GhostNetV2', init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
