# Faster R-CNN + GhostNet-1.1x + FPN, 1x schedule, COCO 2017 (paper, Table 8:
# 26.9 mAP). The stride-4 output is tapped too, so that the FPN levels,
# anchors and RoI strides (4-64) of MMDetection's R-50 config stay valid.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

# No ImageNet weights are published for 1.1x (see the RetinaNet config).
pretrained = 'checkpoints/ghostnet-1.1x_imagenet_mmdet.pth'

# The base's data_preprocessor already normalises RGB input with the ImageNet
# mean and std that the GhostNet weights were trained with.
model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.1,
        out_indices=(2, 4, 6, 8),  # last block at stride 4, 8, 16, 32
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[28, 44, 124, 176]))
