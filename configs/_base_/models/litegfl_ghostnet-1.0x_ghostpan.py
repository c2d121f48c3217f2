# LiteGFL on GhostNet-1.0x, NanoDet-Plus-m's design: GhostPAN (96 channels,
# one extra level) and LiteGFLHead (per-level depthwise-separable 5x5 convs,
# GFL's quality focal and distribution focal losses, reg_max 7) with
# NanoDet-Plus's dynamic soft-label assignment (topk 13).
model = dict(
    type='GFL',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(4, 6, 8),
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        type='GhostPAN',
        in_channels=[40, 112, 160],
        out_channels=96,
        num_extra_levels=1,
        kernel_size=5,
        expand=1.0,
        num_blocks=1),
    bbox_head=dict(
        type='LiteGFLHead',
        num_classes=80,
        in_channels=96,
        feat_channels=96,
        stacked_convs=2,
        kernel_size=5,
        reg_max=7,
        anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=5, scales_per_octave=1,
            strides=[8, 16, 32, 64]),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))
