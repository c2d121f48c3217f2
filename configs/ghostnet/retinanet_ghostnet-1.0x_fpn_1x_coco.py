# RetinaNet + GhostNet-1.0x + FPN, 1x schedule, COCO 2017. 1.0x is the width
# with published ImageNet weights (official state_dict_73.98.pth, timm
# ghostnet_100.in1k); convert them once with
#   python tools/model_converters/ghostnet_to_mmdet.py state_dict_73.98.pth \
#       checkpoints/ghostnet-1.0x_imagenet_mmdet.pth
_base_ = './retinanet_ghostnet-1.1x_fpn_1x_coco.py'

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(
        widen_factor=1.0,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[40, 112, 160]))
