"""Deploy: BatchNorm folded into the backbone (switch_to_deploy), ONNX
export with NMS in the graph, and onnxruntime as a backend of the tools,
checked against PyTorch on small inputs."""
import json

import onnx
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torchvision.ops import box_iou

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from ghostnet_mmdet.deploy import (DeployError, ExportError, OnnxRuntimeDetector, export_onnx,
                                   match_detections, prepare_for_export)
from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils.benchmark import spread_head_scores

from .conftest import randomize_norm_stats
from .detection_utils import REPO, SHAPES_CONFIG, read_metrics, run_tool_in_process

TOOLS = REPO / 'tools'
YOLOX_CONFIG = REPO / 'configs' / 'ghostnet' / 'yolox_ghostnet-1.0x_8xb8-300e_coco.py'
# float32 results of the same network computed two ways (folded weights,
# or another runtime's kernels): relative 1e-5, absolute 1e-4 for values
# near zero. Box coordinates are in pixels.
RTOL, ATOL = 1e-5, 1e-4


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.3])
def test_switch_to_deploy_keeps_the_outputs(widen_factor):
    model = GhostNet(widen_factor=widen_factor, out_indices=(2, 4, 6, 8, 9))
    randomize_norm_stats(model)
    model.eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        actual = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for exp, act in zip(expected, actual):
        scale = exp.abs().max().item()
        assert (exp - act).abs().max().item() <= RTOL * scale + 1e-6, scale


def test_deploy_form_refuses_training_and_its_checkpoint_reloads(tmp_path):
    model = GhostNet(channels_last=True)
    randomize_norm_stats(model)
    model.eval().switch_to_deploy()
    with pytest.raises(RuntimeError, match='is in deploy form .* cannot be trained'):
        model.train()
    assert all(not p.requires_grad for p in model.parameters())
    torch.save(model.state_dict(), tmp_path / 'fused.pth')
    rebuilt = GhostNet(channels_last=True, deploy=True,
                       init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'fused.pth')))
    rebuilt.init_weights()
    rebuilt.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for exp, act in zip(model(x), rebuilt(x)):
            assert torch.equal(exp, act)
    with pytest.raises(ValueError, match='has GroupNorm layers, which cannot be folded'):
        GhostNet(norm_cfg=dict(type='GN', num_groups=4)).switch_to_deploy()


def build(config, num_classes=None):
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    if num_classes:
        cfg.model.bbox_head.num_classes = num_classes
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    randomize_norm_stats(model)
    return cfg, model.eval()


def predict_both(cfg, model, onnx_file, images):
    """Detections of the PyTorch model and of the exported one, for the same
    preprocessed batch."""
    samples = [DetDataSample(metainfo=dict(img_shape=im.shape[1:], ori_shape=im.shape[1:],
                                           scale_factor=(1.0, 1.0))) for im in images]
    runtime = OnnxRuntimeDetector(str(onnx_file), cfg.model.data_preprocessor)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
        expected = model.predict(data['inputs'], data['data_samples'])
        actual = runtime.test_step(dict(inputs=images, data_samples=[
            DetDataSample(metainfo=s.metainfo) for s in samples]))
    return [e.pred_instances for e in expected], [a.pred_instances for a in actual]


def assert_same_detections(expected, actual):
    """Box for box (see match_detections: equal scores may swap places)."""
    for exp, act in zip(expected, actual):
        assert len(act) > 0
        torch.testing.assert_close(act.scores, exp.scores, rtol=0, atol=1e-5)  # both sorted
        assert match_detections(exp, act, box_rtol=RTOL, box_atol=ATOL) is None


@pytest.mark.parametrize('config, size, fuse', [
    (SHAPES_CONFIG, 256, False), (SHAPES_CONFIG, 256, True), (YOLOX_CONFIG, 224, True)])
def test_exported_detector_matches_pytorch_box_for_box(config, size, fuse, tmp_path):
    cfg, model = build(config, num_classes=5)
    spread_head_scores(model)  # distinct scores: ties would make NMS order-dependent
    prepare_for_export(model, fuse=fuse)
    onnx_file = tmp_path / 'model.onnx'
    # YOLOX's config keeps every box that survives NMS; the graph needs a
    # bound: one above the number of priors keeps them all here too (with a
    # lower one, which of two equal scores at the cut stays is arbitrary).
    unbounded = not model.bbox_head.test_cfg.get('max_per_img')
    export_onnx(model, str(onnx_file), (size, size), dynamic_batch=True,
                max_per_img=5000 if unbounded else None,
                classes=[f'class{i}' for i in range(5)])
    onnx.checker.check_model(str(onnx_file))
    generator = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
              for _ in range(2)]
    expected, actual = predict_both(cfg, model, onnx_file, images)
    assert_same_detections(expected, actual)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(onnx_file)).metadata_props}
    # NMS ran in the graph: no two boxes of a class overlap more than the
    # threshold; the post-processing settings travel with the file.
    assert meta['input_size'] == [size, size] and meta['dynamic_batch'] is True
    for detections in actual:
        for label in detections.labels.unique():
            boxes = detections.bboxes[detections.labels == label]
            overlaps = box_iou(boxes, boxes).fill_diagonal_(0)
            assert overlaps.max() <= meta['postprocess']['iou_threshold'] + 1e-6


def test_bad_onnx_inputs_are_named(tmp_path):
    cfg, model = build(SHAPES_CONFIG)
    path = tmp_path / 'model.onnx'
    export_onnx(model, str(path), (128, 128), classes=['a', 'b', 'c', 'd', 'e'])
    preprocessor = cfg.model.data_preprocessor
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DeployError, match=rf'{corrupt} is not an ONNX model onnxruntime can load'):
        OnnxRuntimeDetector(str(corrupt), preprocessor)
    with pytest.raises(DeployError, match='ONNX file not found'):
        OnnxRuntimeDetector(str(tmp_path / 'missing.onnx'), preprocessor)
    with pytest.raises(DeployError, match=r'exported for 5 classes \(a, b, c, d, \.\.\.\), this '
                       r'config has 2 \(x, y\)'):
        OnnxRuntimeDetector(str(path), preprocessor, classes=('x', 'y'))
    runtime = OnnxRuntimeDetector(str(path), preprocessor)
    too_big = [torch.zeros(3, 160, 128, dtype=torch.uint8)]
    sample = DetDataSample(metainfo=dict(img_shape=(160, 128), ori_shape=(160, 128),
                                         scale_factor=(1.0, 1.0)))
    with pytest.raises(DeployError, match=r'made a 160x128 input, larger than the 128x128 .* '
                       r'export with --shape 160 128'):
        runtime.test_step(dict(inputs=too_big, data_samples=[sample]))
    foreign = tmp_path / 'foreign.onnx'
    plain = onnx.load(str(path))
    del plain.metadata_props[:]
    onnx.save(plain, str(foreign))
    with pytest.raises(DeployError, match='was not exported by tools/deployment/pytorch2onnx.py'):
        OnnxRuntimeDetector(str(foreign), preprocessor)


def test_export_tool_and_onnxruntime_backend_of_the_tools(trained, capsys, monkeypatch):
    """The main job's path in miniature: export the trained checkpoint, then
    evaluate it with tools/test.py --backend onnxruntime (CocoMetric) and
    draw with tools/demo.py, against the PyTorch checkpoint."""
    folder, config, data_root, work_dir, _ = trained
    monkeypatch.chdir(folder)
    onnx_file = folder / 'tiny.onnx'
    status, out, err = run_tool_in_process(
        TOOLS / 'deployment' / 'pytorch2onnx.py', config, work_dir / 'iter_6.pth', '--out',
        onnx_file, '--fuse', '--verify', data_root / 'val' / '000000.jpg', capsys=capsys)
    assert status == 0, err[-3000:]
    assert 'onnx.checker passed' in out and 'input 1x3x256x256' in out
    assert 'the same detections' in out
    status, _, err = run_tool_in_process(TOOLS / 'test.py', config, work_dir / 'iter_6.pth',
                                         '--work-dir', folder / 'pt', capsys=capsys)
    assert status == 0, err[-3000:]
    status, _, err = run_tool_in_process(TOOLS / 'test.py', config, onnx_file, '--backend',
                                         'onnxruntime', '--work-dir', folder / 'ort', capsys=capsys)
    assert status == 0, err[-3000:]
    pytorch, runtime = read_metrics(folder / 'pt'), read_metrics(folder / 'ort')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
        assert abs(pytorch[key] - runtime[key]) <= 0.002, (key, pytorch[key], runtime[key])
    status, out, err = run_tool_in_process(
        TOOLS / 'demo.py', data_root / 'val' / '000001.jpg', config, onnx_file, '--backend',
        'onnxruntime', '--out-dir', folder / 'ort_demo', '--score-thr', '0', capsys=capsys)
    assert status == 0, err[-3000:]
    import cv2
    picture = cv2.imread(str(folder / 'ort_demo' / '000001.png'))
    original = cv2.imread(str(data_root / 'val' / '000001.jpg'))
    assert picture.shape == original.shape and (cv2.absdiff(picture, original) > 40).mean() > 0.001


def test_export_refuses_unsupported_detectors_and_opsets(tmp_path):
    _, model = build(SHAPES_CONFIG)
    with pytest.raises(ExportError, match='--opset must be at least 11'):
        export_onnx(model, str(tmp_path / 'x.onnx'), (64, 64), opset=9)
    _, two_stage = build(REPO / 'configs' / 'ghostnet' / 'faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py')
    with pytest.raises(ExportError, match='single-stage detectors .* FasterRCNN'):
        export_onnx(two_stage, str(tmp_path / 'y.onnx'), (64, 64))
    assert not (tmp_path / 'x.onnx').exists() and not (tmp_path / 'y.onnx').exists()
