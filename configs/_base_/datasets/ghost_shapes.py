# GhostShapes data and CPU schedule shared by the *_shapes.py configs. Names
# start with ``shapes_`` so that this file can sit beside a COCO config in
# ``_base_`` (MMEngine refuses keys defined by two bases); a config applies
# them with ``train_dataloader = {{_base_.shapes_train_dataloader}}`` etc.
shapes_data_root = 'data/shapes/'
shapes_image_size = 256
# Every dataloader names the same splits, so the files are made once.
shapes_dataset = dict(
    type='GhostShapesDataset',
    data_root=shapes_data_root,
    splits=dict(train=2400, val=200),
    image_size=shapes_image_size,
    seed=0,
    generate_if_missing=True)
shapes_max_iters = 1500
shapes_batch_size = 8

shapes_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(shapes_image_size, shapes_image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
shapes_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(shapes_image_size, shapes_image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

# 2-core CPU: data loading in the main process (workers would compete with
# the model for the two cores; decoding 256x256 JPEGs is cheap).
shapes_train_dataloader = dict(
    _delete_=True,
    batch_size=shapes_batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=shapes_train_pipeline,
        **shapes_dataset))
shapes_val_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=shapes_test_pipeline,
        **shapes_dataset))
shapes_val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=shapes_data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False,
    backend_args=None)

shapes_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                        max_iters=shapes_max_iters, val_interval=shapes_max_iters)
shapes_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=shapes_max_iters,
         milestones=[int(shapes_max_iters * 0.75), int(shapes_max_iters * 0.9)], gamma=0.1),
]
shapes_default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval=shapes_max_iters, max_keep_ckpts=1))

# From scratch: AdamW (it learned faster than SGD at lr 0.01 or 0.04 here;
# lr 0.002 beat 0.001), linear warm-up, steps down late; gradient clipping
# keeps early iterations from diverging (SGD without it went NaN near
# iteration 260).
# fused=True: torch's one-kernel AdamW (CPU and CUDA), the same update as the
# per-parameter loop (tests/test_train_speed.py) in 7 ms instead of 37 ms per
# step on a 2-core AVX2 CPU for the main job's 297 parameter tensors.
shapes_optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.002, weight_decay=0.05, fused=True),
    clip_grad=dict(max_norm=10, norm_type=2))
