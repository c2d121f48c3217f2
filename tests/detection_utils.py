"""Small real inputs for detector tests: synthetic batches, and configs
pointed at a tiny GhostShapes set on disk."""
import torch
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from ghostnet_mmdet.datasets import SHAPE_CLASSES


def synthetic_batch(num_images=2, size=(96, 128), num_boxes=3, num_classes=80, seed=0):
    """A batch in the form a DetDataPreprocessor takes: uint8 images and
    DetDataSamples with ground-truth boxes."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                                    generator=generator))
        xy = torch.rand(num_boxes, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
        wh = 8 + torch.rand(num_boxes, 2, generator=generator) * torch.tensor([width * 0.35, height * 0.35])
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
            scale_factor=(1.0, 1.0), batch_input_shape=(height, width), img_id=0,
            img_path='synthetic.jpg', flip=False))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(0, num_classes, (num_boxes, ), generator=generator))
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def tiny_pipelines(scale=(64, 64)):
    train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                              'scale_factor')),
    ]
    return train, test


def point_config_at_tiny_coco(cfg, data_root, work_dir, max_epochs=1, classes=SHAPE_CLASSES):
    """Make a COCO config train briefly on the tiny dataset of
    :func:`ghostnet_mmdet.datasets.generate_shapes_dataset` (plain
    CocoDataset over its files): its data, classes, a small image size, no
    pretrained weights."""
    train_pipeline, test_pipeline = tiny_pipelines()
    metainfo = dict(classes=tuple(classes))
    data_root = data_root.rstrip('/') + '/'
    cfg.work_dir = work_dir
    cfg.model.backbone.init_cfg = None
    if cfg.model.get('test_cfg') and 'score_thr' in cfg.model.test_cfg:
        # An untrained model scores low; keep its boxes so metrics exist.
        cfg.model.test_cfg.score_thr = 0.0
    head = cfg.model.get('bbox_head')
    if head is not None and 'num_classes' in head:
        head.num_classes = len(classes)
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                     ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                     filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
    cfg.val_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                     ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                     test_mode=True, pipeline=test_pipeline))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                             metric='bbox')
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.log_level = 'WARNING'
    return cfg
