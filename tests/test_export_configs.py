"""Every detector config the plugin ships exports to ONNX with its
post-processing in the graph and passes onnx.checker; for one config per
head family and backbone version (PARITY_CONFIGS), every deploy runtime
gives PyTorch's detections box for box, on a batch where one image is
padded (boxes are clipped at the image, as MMDetection clips them, not at
the padding). The other configs share those graphs' code paths: their
heads are of the same families and their backbones of the same versions."""
import onnx
import pytest
import torch
from torchvision.ops import box_iou

from ghostnet_mmdet.compat import _conv_modules

from ghostnet_mmdet.deploy import (BACKENDS, ExportError, export_onnx, head_postprocess,
                                   match_detections, model_feeds, prepare_for_export)
from ghostnet_mmdet.deploy.quantize import quantize_onnx
from ghostnet_mmdet.deploy.contract import INPUT_NAMES

from .detection_utils import (BOX_ATOL, PADDED, PARITY_CONFIGS, REPO, SCORE_ATOL, SIZE,
                              build_config_detector, calibrate_heads, norm_stats_from,
                              padded_batch, predict_both, samples_for, shapes_scenes)

build = build_config_detector
GHOSTNET = REPO / 'configs' / 'ghostnet'
EXPORT_CONFIGS = sorted(GHOSTNET.glob('*.py')) + [REPO / 'configs' / 'retinanet_ghostnet.py']
BASELINE_CONFIGS = sorted((REPO / 'configs' / 'baselines').glob('*.py'))
# Head families that clip boxes at the image (YOLOX and YOLOv3 do not).
CLIPPING = ('dense', 'gfl', 'two_stage')
def export_and_compare(config, tmp_path, fuse=True):
    """Export ``config``'s detector (random weights, varied scores) at
    SIZE x SIZE and compare every runtime with PyTorch; returns the
    post-processing family and PyTorch's detections."""
    cfg, model = build(config)
    images = padded_batch()
    if cfg.model.backbone.type == 'GhostNetV3':
        # V3's summed branches from a Kaiming start grow to 1e8 by stage 8,
        # where float32 rounding differs between runtimes by more than any
        # tolerance; BatchNorm statistics of the images keep them at the
        # scale of a trained network (the export form's exactness is
        # tests/test_export_form.py's, with timm's initialisation).
        norm_stats_from(model, images)
    calibrate_heads(model, images)  # heads that score and place boxes like trained ones
    prepare_for_export(model, fuse=fuse)
    family = head_postprocess(model).family
    onnx_file = tmp_path / 'model.onnx'
    # Every box that survives NMS: YOLOX's config has no max_per_img.
    export_onnx(model, str(onnx_file), (SIZE, SIZE), dynamic_batch=True,
                max_per_img=5000 if family == 'yolox' else None)
    onnx.checker.check_model(str(onnx_file))
    for backend in BACKENDS:
        expected, actual = predict_both(cfg, model, onnx_file, images, backend)
        for exp, act in zip(expected, actual):
            assert len(exp) > 0, 'no detections to compare'
            mismatch = match_detections(exp, act, score_atol=SCORE_ATOL, box_rtol=1e-5,
                                        box_atol=BOX_ATOL)
            assert mismatch is None, (backend, mismatch)
    return family, expected


def test_parity_configs_cover_every_family_and_version():
    """PARITY_CONFIGS stand for the rest: every head family and backbone
    type among the shipped configs is among theirs."""
    from mmengine.config import Config

    def kinds(configs):
        found = set()
        for config in configs:
            cfg = Config.fromfile(config)
            head = cfg.model.get('bbox_head') or cfg.model.get('rpn_head')
            found.add(('backbone', cfg.model.backbone.type))
            found.add(('head', head.type))
        return found

    # MMDetection's own backbones are plain convolutions and norms, as
    # MobileNetV2 (in PARITY_CONFIGS) is.
    assert kinds(EXPORT_CONFIGS + BASELINE_CONFIGS) - kinds(PARITY_CONFIGS) <= {
        ('backbone', 'ResNet'), ('backbone', 'CSPNeXt')}


@pytest.mark.parametrize('config', [c for c in EXPORT_CONFIGS + BASELINE_CONFIGS
                                    if c not in PARITY_CONFIGS], ids=lambda p: p.name)
def test_every_other_config_exports_a_checked_graph(config, tmp_path):
    """Build, fuse, a supported head family, export, onnx.checker (full)."""
    cfg, model = build(config)
    prepare_for_export(model, fuse=True)
    family = head_postprocess(model).family
    path = tmp_path / 'model.onnx'
    export_onnx(model, str(path), (SIZE, SIZE), max_per_img=5000 if family == 'yolox' else None)
    onnx.checker.check_model(str(path), full_check=True)
    names = [i.name for i in onnx.load(str(path)).graph.input]
    assert names == (INPUT_NAMES if family in CLIPPING else INPUT_NAMES[:1])


@pytest.mark.parametrize('config', PARITY_CONFIGS, ids=lambda p: p.name)
def test_every_runtime_matches_pytorch(config, tmp_path):
    family, expected = export_and_compare(config, tmp_path)
    padded = expected[1].bboxes
    height, width = PADDED
    if family in CLIPPING:
        # Clipped at the image, inside the padded input: a graph that
        # clipped at the input would put these boxes elsewhere.
        assert padded[:, 2].max() <= width and padded[:, 3].max() <= height
        assert (padded[:, 2] == width).any() or (padded[:, 3] == height).any()


def test_unfused_two_stage_detector_matches_too(tmp_path):
    """Faster R-CNN without --fuse: its RoI head's BatchNorm-free FCs and the
    backbone's BatchNorms as trained."""
    export_and_compare(REPO / 'configs' / 'ghostnet' / 'faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py',
                       tmp_path, fuse=False)


@pytest.mark.parametrize('depthwise', [False, True], ids=['conv', 'depthwise'])
def test_shared_head_convs_are_folded_per_level(depthwise, tmp_path):
    """RTMDet shares its head convs across levels, each with its own
    BatchNorm: --fuse gives each level its own folded conv, and the fused
    head computes what the unfused one does. With MMDetection's
    ``use_depthwise=True`` in neck and head (which MMDetection 3.3.0 itself
    fails to build: ghostnet_mmdet.compat) both convs of each
    depthwise-separable module are shared, then folded per level, and the
    detector exports."""
    config = REPO / 'configs' / 'ghostnet' / 'rtmdet_ghostnet-1.0x_8xb32-300e_coco.py'
    if depthwise:
        swap = tmp_path / 'depthwise.py'
        swap.write_text(f"_base_ = '{config}'\n"
                        "model = dict(neck=dict(use_depthwise=True), "
                        "bbox_head=dict(use_depthwise=True))\n")
        config = swap
    _, model = build(config)
    head = model.bbox_head

    def convs(level):
        return [module.conv for module in _conv_modules(head.cls_convs[level][0])]

    assert all(a is b for a, b in zip(convs(1), convs(0)))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        expected = model.bbox_head(model.extract_feat(x))
        prepare_for_export(model, fuse=True)
        actual = model.bbox_head(model.extract_feat(x))
    assert all(a is not b for a, b in zip(convs(1), convs(0)))
    for exp_level, act_level in zip(sum(map(list, expected), []), sum(map(list, actual), [])):
        torch.testing.assert_close(act_level, exp_level, rtol=1e-4, atol=1e-4)
    if depthwise:
        export_onnx(model, str(tmp_path / 'model.onnx'), (SIZE, SIZE))
        onnx.checker.check_model(str(tmp_path / 'model.onnx'), full_check=True)


def test_mmdetection_gfl_head_matches_too(tmp_path):
    """MMDetection's own GFLHead (learnt scales, GroupNorm, shared convs)
    goes through the same 'gfl' family as LiteGFLHead."""
    config = tmp_path / 'gfl.py'
    config.write_text(
        "_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='GhostNet', out_indices=(2, 4, 6, 8)),\n"
        "             neck=dict(in_channels=[24, 40, 112, 160], out_channels=64),\n"
        "             bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=2,\n"
        "                            norm_cfg=dict(type='GN', num_groups=16)))\n")
    family, _ = export_and_compare(config, tmp_path)
    assert family == 'gfl'


@pytest.mark.parametrize('base, head', [('atss/atss_r50_fpn_1x_coco.py', 'ATSSHead'),
                                        ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'FCOSHead')])
def test_unsupported_heads_are_named(base, head, tmp_path):
    config = tmp_path / 'swap.py'
    config.write_text(
        f"_base_ = 'mmdet::{base}'\n"
        "custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='GhostNet', out_indices=(2, 4, 6, 8)),\n"
        "             neck=dict(in_channels=[24, 40, 112, 160]))\n")
    _, model = build(config)
    path = tmp_path / 'x.onnx'
    with pytest.raises(ExportError, match=head):
        export_onnx(model, str(path), (64, 64))
    assert not path.exists()


def test_int8_of_a_graph_without_img_shape(tmp_path):
    """YOLOv3's graph has no img_shape input (it does not clip): calibration
    feeds, which carry one, are fitted to the graph's inputs (before either
    engine runs), and the INT8 file runs."""
    cfg, model = build(REPO / 'configs' / 'ghostnet' / 'yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py')
    images, _ = shapes_scenes(3)
    calibrate_heads(model, images)  # scores like a trained head's: detections to compare
    prepare_for_export(model, fuse=True)
    with torch.no_grad():
        inputs = model.data_preprocessor(
            dict(inputs=images, data_samples=samples_for(images)), False)['inputs']
    feeds = [model_feeds(INPUT_NAMES, x[None].numpy()) for x in inputs[1:]]
    image = images[:1]
    fp32, int8 = tmp_path / 'fp32.onnx', tmp_path / 'int8.onnx'
    export_onnx(model, str(fp32), (128, 128), classes=[f'c{i}' for i in range(5)])
    assert [i.name for i in onnx.load(str(fp32)).graph.input] == ['input']
    record = quantize_onnx(str(fp32), str(int8), feeds, backend='onnxruntime')
    assert record['int8_convs'] > 0 and record['backend'] == 'onnxruntime'
    found = [BACKENDS['onnxruntime'](str(path), cfg.model.data_preprocessor).test_step(
        dict(inputs=image, data_samples=samples_for(image)))[0].pred_instances
        for path in (fp32, int8)]
    expected, actual = found
    assert len(expected) > 0 and len(actual) > 0
    # INT8's best box is one of float32's: same label, IoU >= 0.5.
    best = int(actual.scores.argmax())
    same_label = expected.labels == actual.labels[best]
    assert same_label.any()
    assert box_iou(actual.bboxes[best:best + 1], expected.bboxes[same_label]).max() >= 0.5
