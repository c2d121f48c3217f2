# The 320x320 config (litegfl_ghostnet-1.0x_ghostpan_4xb96-320-300e_coco.py)
# at 416x416, as NanoDet-Plus-m-416.
_base_ = './litegfl_ghostnet-1.0x_ghostpan_4xb96-320-300e_coco.py'

input_size = 416
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
