# YOLOv3 head on GhostNet-1.0x at 320x320, modelled on MMDetection's
# YOLOv3-MobileNetV2-320 (its anchors, pipeline and schedule).
_base_ = 'mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(4, 6, 8),
        act_cfg=dict(type='ReLU'),  # as the ImageNet weights were trained
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[160, 112, 40]))
