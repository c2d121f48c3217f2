"""Small real inputs for detector tests: synthetic batches, configs pointed
at a tiny GhostShapes set on disk, and the project's tools run as a user
runs them."""
import glob
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from ghostnet_mmdet.datasets import SHAPE_CLASSES
from ghostnet_mmdet.deploy import DeployError

from .backbone_utils import randomize_norm_stats

REPO = Path(__file__).resolve().parents[1]
# Every config the repository ships (baselines included).
CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)
SHAPES_CONFIG = REPO / 'configs' / 'ghostnet' / 'retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py'
# float32 results of the same network computed two ways (folded weights,
# or another runtime's kernels): relative 1e-5, absolute 1e-4 for values
# near zero. Box coordinates are in pixels.
RTOL, ATOL = 1e-5, 1e-4
METRIC_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
               'coco/bbox_mAP_m', 'coco/bbox_mAP_l')


def run_tool(*args, cwd, expect_success=True, env=None, timeout=600):
    """Run a script of tools/ (or any Python file) in a fresh interpreter."""
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=timeout,
                            env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})})
    if expect_success:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def tiny_config_paths(folder, name='tiny_shapes.py'):
    """Where :func:`write_tiny_config` puts the config and its data."""
    return Path(folder) / name, Path(folder) / 'shapes'


def write_tiny_config(folder, name='tiny_shapes.py', extra=''):
    """A user's config on top of the shapes config: tiny data, 6 iterations."""
    config, data_root = tiny_config_paths(folder, name)
    data_root = f'{data_root}/'
    config.write_text(f"""
_base_ = '{SHAPES_CONFIG}'
data_root = '{data_root}'
shapes = dict(splits=dict(train=12, val=6), image_size=256, seed=3, generate_if_missing=True)
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, **shapes))
val_dataloader = dict(batch_size=3, dataset=dict(data_root=data_root, **shapes))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=6, val_interval=6)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=6), logger=dict(interval=2))
# An untrained model scores low; keep its boxes so that every metric exists.
model = dict(test_cfg=dict(score_thr=0.0))
""" + extra)
    return config, Path(data_root)


def read_metrics(work_dir):
    """The metrics MMEngine wrote for the last evaluation in work_dir."""
    files = sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json')) + \
        sorted(glob.glob(f'{work_dir}/*/*.json'))
    assert files, f'no metrics written under {work_dir}'
    metrics = {}
    for path in files:
        for line in Path(path).read_text().splitlines():
            # Strict: a distributed test's file is written by rank 0 alone
            # (ghostnet_mmdet.compat), so every line is one whole record.
            record = json.loads(line)
            if any(k in record for k in METRIC_KEYS):
                metrics = record
    return metrics


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


def point_loggers_at_stdout():
    """MMEngine names its loggers by config and second and hands an existing
    one back: its console handler still writes to the stream that was
    sys.stdout when it was made, which pytest closes after that test. Point
    every console handler at this test's stdout (not setStream, which
    flushes the closed one first)."""
    from mmengine.logging import MMLogger
    for logger in MMLogger._instance_dict.values():
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stdout


def run_tool_in_process(script, *args, capsys):
    """Run a tool's ``main(argv)`` in this interpreter (seconds faster than
    a fresh one, for error paths): returns (exit status, stdout, stderr)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{Path(script).stem}', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    point_loggers_at_stdout()
    capsys.readouterr()
    status = module.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def samples_for(images):
    """Data samples for unscaled images (CHW tensors), as the test pipeline
    would give them: image and original shape the image's, scale 1."""
    return [DetDataSample(metainfo=dict(img_shape=tuple(im.shape[1:]),
                                        ori_shape=tuple(im.shape[1:]), scale_factor=(1.0, 1.0)))
            for im in images]


# What calibrate_heads aims the heads' predictors at: (mean, std) of their
# outputs on the images.
PREDICTOR_TARGETS = dict(cls=(-7.0, 2.0), reg=(0.0, 0.5), mixed=(0.0, 1.0))


def calibrate_heads(model, images, seed=0):
    """Make an untrained detector's heads behave like trained ones on
    ``images``: their hidden layers Kaiming-initialised (MMDetection's
    std-0.01 start shrinks their input's variation a hundredfold and leaves
    every score at its prior up to float rounding), and their predictors
    (the convs and FCs outside ConvModules) rescaled to the outputs of
    :data:`PREDICTOR_TARGETS`: classification and objectness logits of
    about -7 +- 2 with a random offset per channel (varied scores, a few
    percent of them above the score thresholds, as with a trained head,
    none saturated; softmax heads get their background column 5 higher),
    box regressions of about 0 +- 0.5 (boxes of the priors' size, not exp(50)
    of it). Many near-equal candidates would make NMS and the top-k cut
    depend on float rounding, which differs between runtimes."""
    import torch.nn as nn
    from mmcv.cnn import ConvModule
    generator = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    predictors, hidden = {}, []
    for name, module in modules.items():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or \
                not name.startswith(('bbox_head.', 'rpn_head.', 'roi_head.')):
            continue
        # Hidden: inside a ConvModule, or an FC of the RoI head's trunk.
        if isinstance(modules[name.rpartition('.')[0]], ConvModule) or module.bias is None or \
                'fcs.' in name:
            hidden.append(module)
        else:
            predictors[name] = 'cls' if ('cls' in name or 'obj' in name) else \
                'reg' if 'reg' in name else 'mixed'
    for module in hidden:
        nn.init.kaiming_normal_(module.weight, generator=generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    outputs = {}
    hooks = [modules[name].register_forward_hook(
        lambda _, __, out, name=name: outputs.setdefault(name, []).append(out.detach().flatten()))
        for name in predictors]
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples_for(images)),
                                       False)
        model.predict(data['inputs'], data['data_samples'])
    for hook in hooks:
        hook.remove()
    for name, kind in predictors.items():
        module, values = modules[name], torch.cat(outputs[name])
        mean, std = PREDICTOR_TARGETS[kind]
        head = model.roi_head.bbox_head if name.startswith('roi_head.') else \
            modules[name.split('.')[0]]
        if kind == 'reg' and type(getattr(head, 'bbox_coder', None)).__name__ == \
                'DistancePointBBoxCoder':
            mean = 2.0  # distances to the box sides (in strides): positive
        scale = std / (float(values.std()) + 1e-12)
        module.weight.data *= scale
        offset = torch.randn(module.bias.shape, generator=generator) * (0.5 if kind == 'cls' else 0)
        module.bias.data = (module.bias.data - float(values.mean())) * scale + mean + offset
        classes = getattr(head, 'num_classes', 0)
        if kind == 'cls' and not getattr(head, 'use_sigmoid_cls', True) and classes:
            # Softmax over classes + background (SSD, the RoI head): the
            # background column of every prior gets +5 + 7 (logits stay
            # around 0 after the shift above, where softmax lives).
            bias = module.bias.data.view(-1, classes + 1)
            bias[:, :classes] += 7.0
            bias[:, classes] += 12.0


def build_detector(cfg):
    """The detector of ``cfg`` (a Config), initialised, without ImageNet
    weights (none on test machines)."""
    init_default_scope('mmdet')
    if (cfg.model.backbone.get('init_cfg') or {}).get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def build_config_detector(config, num_classes=None):
    """``(cfg, detector)`` of a config file: no pretrained weights, BN
    statistics randomised, eval mode."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    if num_classes:
        cfg.model.bbox_head.num_classes = num_classes
    model = build_detector(cfg)
    randomize_norm_stats(model)
    return cfg, model.eval()


def predict_both(cfg, model, onnx_file, images, backend='onnxruntime'):
    """Detections of the PyTorch model and of the exported one run by
    ``backend``, for the same preprocessed batch."""
    from ghostnet_mmdet.deploy import BACKENDS
    runtime = BACKENDS[backend](str(onnx_file), cfg.model.data_preprocessor)
    return predict_with_runtime(model, runtime, images)


def predict_with_runtime(model, runtime, images):
    """Detections of the PyTorch model and of a deploy ``runtime`` (a
    RuntimeDetector), for the same preprocessed batch."""
    samples = samples_for(images)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
        expected = model.predict(data['inputs'], data['data_samples'])
        actual = runtime.test_step(dict(inputs=images, data_samples=[
            DetDataSample(metainfo=s.metainfo) for s in samples]))
    return [e.pred_instances for e in expected], [a.pred_instances for a in actual]


def copy_folder(folder, tmp_path, name):
    """A copy of an export folder, to damage in a refusal test."""
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def assert_app_runtime_refusals(runtime_class, folder, preprocessor, tmp_path, model_file):
    """What every app runtime (ncnn, ExecuTorch) refuses of a good export
    ``folder``: a meta.json of other classes, and an input larger than the
    exported size (the runtime given ``model_file``, a file in the folder)."""
    other = copy_folder(folder, tmp_path, 'other')
    meta = json.loads((folder / 'meta.json').read_text())
    (other / 'meta.json').write_text(json.dumps(dict(meta, classes=list('abcde'))))
    with pytest.raises(DeployError, match=r'exported for 5 classes \(a, b, c, d, \.\.\.\), '
                       r'this config has 2 \(x, y\)'):
        runtime_class(str(other), preprocessor, classes=('x', 'y'))
    runtime = runtime_class(str(folder / model_file), preprocessor, num_threads=1)
    too_big = [torch.zeros(3, SIZE + 32, SIZE, dtype=torch.uint8)]
    sample = DetDataSample(metainfo=dict(img_shape=(SIZE + 32, SIZE), ori_shape=(SIZE + 32, SIZE),
                                         scale_factor=(1.0, 1.0)))
    with pytest.raises(DeployError, match=rf'made a {SIZE + 32}x{SIZE} input, larger than the '
                       rf'{SIZE}x{SIZE} .* export with --shape {SIZE + 32} {SIZE}'):
        runtime.test_step(dict(inputs=too_big, data_samples=[sample]))


def assert_same_detections(expected, actual):
    """Box for box (see match_detections: equal scores may swap places)."""
    from ghostnet_mmdet.deploy import match_detections
    for exp, act in zip(expected, actual):
        assert len(act) > 0
        torch.testing.assert_close(act.scores, exp.scores, rtol=0, atol=1e-5)  # both sorted
        assert match_detections(exp, act, box_rtol=RTOL, box_atol=ATOL) is None


def shapes_scenes(count, size=128, seed=0, max_objects=5):
    """GhostShapes scenes drawn by the dataset's own generator: CHW uint8
    images and data samples with their ground truth."""
    import numpy as np
    from ghostnet_mmdet.datasets.shapes import draw_image
    rng = np.random.RandomState(seed)
    images, samples = [], []
    for _ in range(count):
        image, objects = draw_image(rng, size, min_object=12, max_objects=max_objects)
        images.append(torch.from_numpy(image.transpose(2, 0, 1).copy()))
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([o['bbox'] for o in objects], dtype=torch.float32),
            labels=torch.tensor([o['label'] for o in objects]))
        samples.append(sample)
    return images, samples


def overfit_detector(model, images, samples, steps=100, lr=2e-3, losses=None):
    """Train ``model`` on one batch until it knows it (AdamW, gradient
    clipping as the GhostShapes recipe): confident, distinct detections on
    those images, as a trained detector has on its data (on 4 scenes of
    128x128, 100 steps: scores of 0.7-0.99 for the objects, about 13 s on 2
    cores). Each step's loss is appended to ``losses`` if given."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    model.train()
    for _ in range(steps):
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        optimizer.step()
        if losses is not None:
            losses.append(float(loss))
    return model.eval()


# Box for box in both runtimes: every head family's graph (dense with
# sigmoid and anchors, SSD's softmax, RTMDet's points and unshared convs,
# GFL's distributions with a GhostPAN neck and depthwise-separable convs,
# YOLOX, YOLOv3, two-stage), every backbone version (V1, V2, V3), and a
# backbone that is not GhostNet, and the peers' (tests/test_export_configs.py;
# tests/test_ncnn.py takes most of them).
PARITY_CONFIGS = [REPO / 'configs' / 'ghostnet' / name for name in (
    'retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py',
    'retinanet_ghostnetv2-1.0x_fpn_1xb8-1.5k_shapes.py',
    'retinanet_ghostnetv3-1.0x_fpn_1xb8-1.5k_shapes.py',
    'ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py',
    'yolox_ghostnet-1.0x_8xb8-300e_coco.py',
    'yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py',
)] + [REPO / 'configs' / 'baselines' / name for name in (
    'ssdlite_mobilenetv2_1xb8-1.5k_shapes.py',
    # The peers' backbones: channel shuffles (mmpretrain's ShuffleNetV2),
    # YOLOX's focus slices and SPP pooling (CSPDarknet).
    'nanodet-plus-m_shufflenetv2-1.0x_ghostpan_1xb8-1.5k_shapes.py',
    'yolox_nano_1xb8-1.5k_shapes.py')]
# Random COCO-sized heads amplify float rounding (which differs between
# PyTorch's and the runtimes' kernels) more than the trained GhostShapes
# detectors, whose detections tests/test_deploy.py holds to scores within
# 1e-5 and boxes within 1e-4 px: here scores within 1e-4, boxes within
# 0.01 px (relative 1e-5), still one to one with equal labels.
SCORE_ATOL, BOX_ATOL = 1e-4, 1e-2
# Export tests' input side; the second image of padded_batch() is padded to
# the input on its right and bottom.
SIZE = 128
PADDED = (96, 112)


def padded_batch():
    """Two images of coarse colour blobs (smooth over tens of pixels, so
    that deep features vary across the image as they do on real photos;
    uniform noise averages out into nearly constant deep features)."""
    generator = torch.Generator().manual_seed(1)
    images = []
    for shape in ((SIZE, SIZE), PADDED):
        coarse = torch.rand(1, 3, shape[0] // 16, shape[1] // 16, generator=generator)
        smooth = torch.nn.functional.interpolate(coarse, size=shape, mode='bicubic')
        images.append((smooth[0].clamp(0, 1) * 255).round().to(torch.uint8))
    return images


def norm_stats_from(model, images):
    """BatchNorm running statistics of ``images`` (one cumulative pass in
    training mode), the affine weights kept."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    inputs = model.data_preprocessor(dict(inputs=images), False)['inputs']
    with torch.no_grad():
        model.extract_feat(inputs)
    model.eval()


def random_detections(count, classes, side=200, seed=0):
    """``count`` random boxes (at least 10 px a side, overlapping often in a
    ``side`` x ``side`` image), scores and labels of ``classes`` classes."""
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(count, 2, generator=generator) * side
    boxes = torch.cat([corners, corners + 10 + torch.rand(count, 2, generator=generator) *
                       side * 0.3], 1)
    return (boxes, torch.rand(count, generator=generator),
            torch.randint(0, classes, (count, ), generator=generator))
