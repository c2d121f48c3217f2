# RetinaNet + GhostNet-1.1x + FPN, 1x schedule, COCO 2017: the paper's
# setting (Table 8: 26.6 mAP, 164M backbone FLOPs). Only the backbone, the
# FPN's input channels and start level differ from MMDetection's R-50 config.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

# No ImageNet weights are published for 1.1x: train them, convert with
# tools/model_converters/ghostnet_to_mmdet.py --widen-factor 1.1, and put them
# here, or set model.backbone.init_cfg=None to train from scratch.
pretrained = 'checkpoints/ghostnet-1.1x_imagenet_mmdet.pth'

# The base's data_preprocessor already normalises RGB input with the ImageNet
# mean and std that the GhostNet weights were trained with.
model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.1,
        out_indices=(4, 6, 8),  # last block at stride 8, 16, 32
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # Strides 8-32 come from the backbone; two extra convs on the last input
    # give the head its usual five levels (strides 8-128).
    neck=dict(in_channels=[44, 124, 176], start_level=0, num_outs=5))
