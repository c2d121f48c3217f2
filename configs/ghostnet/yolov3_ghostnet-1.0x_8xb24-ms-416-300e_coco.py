# YOLOv3 head on GhostNet-1.0x, modelled on MMDetection's YOLOv3-MobileNetV2
# (multi-scale 320-416 training, 416 test, its 300e schedule).
_base_ = 'mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(4, 6, 8),
        # GhostNet's ImageNet weights were trained with ReLU; the MobileNetV2
        # config's LeakyReLU would change the pretrained function.
        act_cfg=dict(type='ReLU'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # YOLOV3Neck takes the deepest level first.
    neck=dict(in_channels=[160, 112, 40]))
