# Peer for the GhostShapes comparison: YOLOX-nano as MMDetection builds it
# (mmdet::yolox/yolox_nano_8xb8-300e_coco.py: depthwise CSPDarknet with
# deepen 0.33 / widen 0.25, a 64-channel depthwise YOLOX-PAFPN and head,
# SimOTA) on the data, schedule and input size of the other GhostShapes
# configs: no Mosaic/MixUp, multi-scale batches or EMA (none of the other
# detectors here has them), the same AdamW schedule.
_base_ = [
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
act_cfg = dict(type='Swish')
model = dict(
    type='YOLOX',
    # YOLOX's own input: BGR pixels, not normalised.
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        type='CSPDarknet',
        deepen_factor=0.33,
        widen_factor=0.25,
        out_indices=(2, 3, 4),
        use_depthwise=True,
        spp_kernal_sizes=(5, 9, 13),
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    neck=dict(
        type='YOLOXPAFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        use_depthwise=True,
        upsample_cfg=dict(scale_factor=2, mode='nearest'),
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    bbox_head=dict(
        type='YOLOXHead',
        num_classes=5,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        strides=(8, 16, 32),
        use_depthwise=True,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum', loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', mode='square', eps=1e-16, reduction='sum', loss_weight=5.0),
        loss_obj=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum', loss_weight=1.0),
        loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
    test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65)))
# YOLOX's recipe: no weight decay on norms and biases.
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
