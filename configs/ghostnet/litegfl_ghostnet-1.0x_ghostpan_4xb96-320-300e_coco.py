# A NanoDet-Plus-class detector on GhostNet-1.0x at 320x320, COCO 2017:
# GhostPAN (ghost-bottleneck PAN, 96 channels, one extra level) and
# LiteGFLHead (per level two 5x5 depthwise-separable convs, GFL outputs with
# reg_max 7, dynamic soft-label assignment), NanoDet-Plus-m's recipe where
# MMDetection has the parts: AdamW lr 0.001, batch 4x96, 300 epochs, cosine
# schedule, EMA, random affine scaling 0.6-1.4 and translation 0.2,
# photometric distortion. Not NanoDet-Plus's training-only auxiliary head.
# Taps: the last block at strides 8, 16 and 32 (out_indices 4, 6, 8: 40,
# 112 and 160 channels).
_base_ = [
    '../_base_/models/litegfl_ghostnet-1.0x_ghostpan.py',
    'mmdet::_base_/datasets/coco_detection.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]

custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)

pretrained = 'checkpoints/ghostnet-1.0x_imagenet_mmdet.pth'
input_size = 320

model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=pretrained)))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomAffine', max_rotate_degree=0, max_shear_degree=0,
         scaling_ratio_range=(0.6, 1.4), max_translate_ratio=0.2),
    dict(type='PhotoMetricDistortion', brightness_delta=51, contrast_range=(0.6, 1.4),
         saturation_range=(0.5, 1.2), hue_delta=0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=96, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 300
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.0001, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', eta_min=0.00005, begin=0, end=max_epochs, T_max=max_epochs,
         by_epoch=True, convert_to_iter_based=True)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0),
    clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49)
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=384)
