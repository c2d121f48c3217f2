"""Deploy: BatchNorm folded into the backbone (switch_to_deploy), ONNX
export with NMS in the graph, onnxruntime and OpenVINO as backends of the
tools, INT8 quantization, checked against PyTorch on small inputs."""
import json
import re

import numpy as np
import onnx
import pytest
import torch
from torchvision.ops import box_iou

from mmdet.structures import DetDataSample
from ghostnet_mmdet.deploy import (BACKENDS, DeployError, ExportError, export_onnx,
                                   lost_detections, match_detections, prepare_for_export)
from ghostnet_mmdet.deploy.export.ghostnet_form import to_export_form
from ghostnet_mmdet.deploy.quantize import (DEFAULT_KEEP_FP32, conv_kinds, onnx_conv_nodes,
                                            quantize_onnx)
from ghostnet_mmdet.deploy import model_feeds, runtime_call
from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils.benchmark import spread_head_scores

from .backbone_utils import randomize_norm_stats
from .detection_utils import (REPO, RTOL, SHAPES_CONFIG, assert_same_detections,
                              build_config_detector, calibrate_heads, overfit_detector, predict_both, read_metrics,
                              run_tool_in_process, samples_for, shapes_scenes)

TOOLS = REPO / 'tools'
YOLOX_CONFIG = REPO / 'configs' / 'ghostnet' / 'yolox_ghostnet-1.0x_8xb8-300e_coco.py'
build = build_config_detector


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
    for backend in BACKENDS:  # the same file, every runtime
        expected, actual = predict_both(cfg, model, onnx_file, images, backend)
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


@pytest.fixture(scope='module')
def small_export(tmp_path_factory):
    """A GhostShapes RetinaNet exported at 128x128 for 5 classes a-e, its
    heads scoring like trained ones, and the feeds of a GhostShapes scene
    (on which it detects objects, so that comparisons have boxes to
    compare)."""
    cfg, model = build(SHAPES_CONFIG)
    images, _ = shapes_scenes(1)
    calibrate_heads(model, images)
    path = tmp_path_factory.mktemp('small') / 'model.onnx'
    export_onnx(model, str(path), (128, 128), classes=['a', 'b', 'c', 'd', 'e'])
    with torch.no_grad():
        inputs = model.data_preprocessor(
            dict(inputs=images, data_samples=samples_for(images)), False)['inputs']
    feeds = dict(input=inputs.numpy(), img_shape=np.array([[128., 128.]], dtype=np.float32))
    return cfg, path, feeds


def detections_of(output) -> np.ndarray:
    """The detections (rows of x1 y1 x2 y2 score) of one image in a
    runtime's output, without the padding rows (score 0)."""
    dets = np.asarray(output[0] if isinstance(output, (list, tuple)) else output['dets'])[0]
    return dets[dets[:, 4] > 0]


def assert_bad_inputs_are_named(runner, path, preprocessor, tmp_path):
    """What every deployed file (FP32 or INT8) and runtime refuses, and how."""
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(path.read_bytes()[:5000])
    names = dict(onnxruntime='onnxruntime', openvino='OpenVINO')
    with pytest.raises(DeployError, match=rf'{corrupt} is not an ONNX model '
                       rf'{names[runner.backend]} can load'):
        runner(str(corrupt), preprocessor)
    with pytest.raises(DeployError, match='ONNX file not found'):
        runner(str(tmp_path / 'missing.onnx'), preprocessor)
    with pytest.raises(DeployError, match=r'exported for 5 classes \(\w+, \w+, \w+, \w+, \.\.\.\), '
                       r'this config has 2 \(x, y\)'):
        runner(str(path), preprocessor, classes=('x', 'y'))
    with pytest.raises(DeployError, match='num_threads must be a positive int, got 0'):
        runner(str(path), preprocessor, num_threads=0)
    runtime = runner(str(path), preprocessor, num_threads=1)
    height, width = runtime.input_size
    too_big = [torch.zeros(3, height + 32, width, dtype=torch.uint8)]
    sample = DetDataSample(metainfo=dict(img_shape=(height + 32, width),
                                         ori_shape=(height + 32, width), scale_factor=(1.0, 1.0)))
    with pytest.raises(DeployError, match=rf'made a {height + 32}x{width} input, larger than the '
                       rf'{height}x{width} .* export with --shape {height + 32} {width}'):
        runtime.test_step(dict(inputs=too_big, data_samples=[sample]))
    foreign = tmp_path / 'foreign.onnx'
    plain = onnx.load(str(path))
    del plain.metadata_props[:]
    onnx.save(plain, str(foreign))
    with pytest.raises(DeployError, match='was not exported by tools/deployment/pytorch2onnx.py'):
        runner(str(foreign), preprocessor)


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_bad_onnx_inputs_are_named(backend, small_export, tmp_path):
    cfg, path, _ = small_export
    assert_bad_inputs_are_named(BACKENDS[backend], path, cfg.model.data_preprocessor, tmp_path)


def test_nncf_sees_the_network_alone_and_the_graph_is_joined_again(small_export, tmp_path):
    """NNCF quantizes the network without the post-processing (its pattern
    matching grows with the graph): split at the tensors the post-processing
    reads and joined again, the graph computes what it did."""
    from ghostnet_mmdet.deploy.quantize import NETWORK_SCOPES, _join, _split_network
    _, path, feeds = small_export
    model = onnx.load(str(path))
    network, rest = _split_network(model)
    assert all(node.name.startswith(NETWORK_SCOPES) or node.op_type in ('Constant', 'Identity')
               for node in network.graph.node)
    assert not any(node.op_type == 'NonMaxSuppression' for node in network.graph.node)
    assert [i.name for i in network.graph.input] == ['input']
    joined = tmp_path / 'joined.onnx'
    onnx.save(_join(network, rest, model), str(joined))
    expected = runtime_call(str(path), 'onnxruntime')(feeds)
    actual = runtime_call(str(joined), 'onnxruntime', check_export=False)(feeds)
    assert len(detections_of(expected)) >= 3
    assert len(expected) == len(actual)
    assert all(np.array_equal(exp, act) for exp, act in zip(expected, actual))


def test_runtime_call_runs_the_file_in_each_runtime(small_export):
    """What the INT8 speed check and the benchmarks time: one call of the
    file, with the inputs it does not take left out."""
    _, path, feeds = small_export
    outputs = [runtime_call(str(path), backend, 1)(dict(feeds, unused=feeds['input']))
               for backend in BACKENDS]
    dets = [detections_of(output) for output in outputs]
    assert len(dets[0]) >= 3 and dets[0].shape == dets[1].shape
    np.testing.assert_allclose(dets[0], dets[1], rtol=1e-4, atol=1e-4)
    with pytest.raises(DeployError, match="backend must be one of .*'executorch'.*, got 'tensorrt'"):
        runtime_call(str(path), 'tensorrt')
    # An app runtime is given its export folder, not an ONNX file.
    with pytest.raises(DeployError, match='is not an ncnn export of tools/deployment/pytorch2ncnn'):
        runtime_call(str(path), 'ncnn')


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
    assert out.count('the same detections') == len(BACKENDS)  # onnxruntime and openvino
    # PyTorch's: the evaluation at the end of training (which tools/test.py
    # gives again: tests/test_end_to_end.py).
    pytorch = read_metrics(work_dir)
    import cv2
    original = cv2.imread(str(data_root / 'val' / '000001.jpg'))
    for backend in BACKENDS:
        status, _, err = run_tool_in_process(TOOLS / 'test.py', config, onnx_file, '--backend',
                                             backend, '--num-threads', '2', '--work-dir',
                                             folder / backend, capsys=capsys)
        assert status == 0, err[-3000:]
        runtime = read_metrics(folder / backend)
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
            assert abs(pytorch[key] - runtime[key]) <= 0.002, (backend, key, pytorch[key],
                                                              runtime[key])
        status, out, err = run_tool_in_process(
            TOOLS / 'demo.py', data_root / 'val' / '000001.jpg', config, onnx_file, '--backend',
            backend, '--out-dir', folder / f'{backend}_demo', '--score-thr', '0', capsys=capsys)
        assert status == 0, err[-3000:]
        picture = cv2.imread(str(folder / f'{backend}_demo' / '000001.png'))
        assert picture.shape == original.shape
        assert (cv2.absdiff(picture, original) > 40).mean() > 0.001


def test_int8_tool_quantizes_for_a_runtime_evaluates_and_refuses_a_slower_file(
        trained, capsys, monkeypatch, tmp_path):
    """tools/deployment/quantize.py on the trained miniature, end to end
    once: an INT8 QDQ file for OpenVINO calibrated on the config's training
    images, timed against float32, with the layers kept in float32 that
    were asked for, evaluated by tools/test.py; and a file slower than
    --max-ratio is not written. (What each runtime refuses, and whether INT8
    keeps the detections: the tests after this one, at function level.)"""
    folder, config, data_root, work_dir, _ = trained
    monkeypatch.chdir(folder)
    int8_file, fp32_file = folder / 'tiny_int8_openvino.onnx', folder / 'tiny_openvino.onnx'
    # Timed against float32 with a ratio that any INT8 file passes.
    status, out, err = run_tool_in_process(
        TOOLS / 'deployment' / 'quantize.py', config, work_dir / 'iter_6.pth', '--backend',
        'openvino', '--out', int8_file, '--calib-images', '4', '--fp32-out', fp32_file,
        '--max-ratio', '100', capsys=capsys)
    assert status == 0, err[-3000:]
    assert 'calibrating on 4 training images' in out and 'convolutions in INT8' in out
    assert re.search(r'[0-9.]+x the time of float32 in openvino here', out)
    model = onnx.load(str(int8_file))
    ops = [node.op_type for node in model.graph.node]
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    record = meta['quantization']
    assert record['calibration_images'] == 4 and record['format'] == 'QDQ'
    assert record['backend'] == meta['backend'] == 'openvino'
    assert meta['classes'] == ['circle', 'square', 'triangle', 'star', 'cross']
    # Every quantized conv has its weights dequantized in front of it; the kept ones do not.
    weights = {init.name for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    int8_convs = [n for n in model.graph.node if n.op_type == 'Conv'
                  and producers.get(n.input[1]) is not None
                  and producers[n.input[1]].op_type == 'DequantizeLinear']
    assert len(int8_convs) == record['int8_convs'] > 0 and record['fp32_convs'] > 0
    assert ops.count('QuantizeLinear') > 0 and 'NonMaxSuppression' in ops
    # The stem (in the export form, two convolutions on the image, one per
    # half of its output) kept in float32: its weights are plain.
    stem = [n for n in model.graph.node if n.op_type == 'Conv' and n.input[0] == 'input']
    assert len(stem) == 2 and all(n.input[1] in weights for n in stem)
    status, _, err = run_tool_in_process(TOOLS / 'test.py', config, int8_file, '--backend',
                                         'openvino', '--work-dir', folder / 'openvino_int8',
                                         capsys=capsys)
    assert status == 0, err[-3000:]
    assert 'coco/bbox_mAP' in read_metrics(folder / 'openvino_int8')
    status, _, err = run_tool_in_process(
        TOOLS / 'deployment' / 'quantize.py', config, work_dir / 'iter_6.pth', '--backend',
        'openvino', '--out', tmp_path / 'x.onnx', '--calib-images', '0', capsys=capsys)
    assert status == 2 and '--calib-images must be at least 1, got 0' in err
    # An INT8 file slower than asked for is not written.
    status, _, err = run_tool_in_process(
        TOOLS / 'deployment' / 'quantize.py', config, work_dir / 'iter_6.pth', '--backend',
        'onnxruntime', '--out', tmp_path / 'slow.onnx', '--calib-images', '2', '--max-ratio',
        '0.01', capsys=capsys)
    assert status == 2 and not (tmp_path / 'slow.onnx').exists()
    assert re.search(r'error: the INT8 file takes [0-9.]+x the time of float32 in onnxruntime on '
                     r'this processor \(more than --max-ratio 0.01\), so it was not written', err)


@pytest.fixture(scope='module')
def confident_detector(tmp_path_factory):
    """The GhostShapes RetinaNet trained until it knows four GhostShapes
    scenes (scores of 0.7-0.99 for their objects: confident, distinct
    detections), deployed; its float32 export for each runtime, and INT8
    files quantized for each, calibrated on those scenes."""
    torch.manual_seed(0)  # module fixtures come before the per-test seed
    cfg, model = build(SHAPES_CONFIG)
    images, samples = shapes_scenes(4)
    overfit_detector(model, images, samples)
    prepare_for_export(model, fuse=True)
    folder = tmp_path_factory.mktemp('int8')
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples_for(images)),
                                       False)
    feeds = [model_feeds(['input', 'img_shape'], data['inputs'][i:i + 1].numpy())
             for i in range(len(images))]
    files = {}
    for backend in BACKENDS:
        form = to_export_form(model, backend)
        fp32, int8 = folder / f'{backend}.onnx', folder / f'{backend}_int8.onnx'
        export_onnx(form, str(fp32), (128, 128), backend=backend,
                    classes=[f'c{i}' for i in range(5)])
        kinds = conv_kinds(form)
        keep = onnx_conv_nodes(onnx.load(str(fp32)),
                               [path for kind in DEFAULT_KEEP_FP32 for path in kinds[kind]],
                               root=form)
        quantize_onnx(str(fp32), str(int8), feeds, keep, backend=backend)
        files[backend] = fp32, int8
    return cfg, model, images, files


# INT8 keeps a float32 detection if a detection of its label overlaps it by
# IoU >= 0.5 with a score within SCORE_ATOL; checked for every float32
# detection scoring at least SCORE_THR. (Measured on a 2-core AMD EPYC with
# AVX-512 + VNNI: every detection kept, scores moved by 0.04 at most; up
# to about 0.11 was seen for a score near 0.5, on the sigmoid's steepest
# part, in a miniature trained from another seed.)
SCORE_THR, SCORE_ATOL = 0.5, 0.15


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_int8_keeps_the_detections(backend, confident_detector):
    """INT8 against float32 in the runtime it was made for, as sets: every
    float32 detection above SCORE_THR is kept (same label, IoU >= 0.5,
    score within SCORE_ATOL), and INT8 adds none above SCORE_THR +
    SCORE_ATOL."""
    cfg, model, images, files = confident_detector
    fp32, int8 = files[backend]
    # (The float32 files' exactness against PyTorch is the export tests'.)
    _, float32 = predict_both(cfg, model, fp32, images, backend)
    _, quantized = predict_both(cfg, model, int8, images, backend)
    for exp, act in zip(float32, quantized):
        assert int((exp.scores >= SCORE_THR).sum()) >= 3, exp.scores[:10]  # enough to lose
        assert lost_detections(exp, act, SCORE_THR, SCORE_ATOL) == []
        assert lost_detections(act, exp, SCORE_THR + SCORE_ATOL, SCORE_ATOL) == []


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_int8_files_are_refused_by_the_other_runtime_and_like_float32(backend,
                                                                     confident_detector,
                                                                     tmp_path):
    """An INT8 file names its runtime; the other runtime refuses it and says
    how to get one for itself; both refuse what they refuse for float32."""
    cfg, _, _, files = confident_detector
    int8 = files[backend][1]
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(int8)).metadata_props}
    assert meta['quantization']['backend'] == meta['backend'] == backend
    other = next(name for name in BACKENDS if name != backend)
    preprocessor = cfg.model.data_preprocessor
    with pytest.raises(DeployError, match=rf'is an INT8 file made for {backend}; {other} runs '
                       rf'it slower than float32\. Quantize for {other} .*--backend {other}'):
        BACKENDS[other](str(int8), preprocessor)
    assert_bad_inputs_are_named(BACKENDS[backend], int8, preprocessor, tmp_path)


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_int8_check_fails_when_int8_loses_detections(backend, confident_detector, tmp_path):
    """The check above can fail: the same INT8 file with wrong weight
    scales for the head's last classification conv (every other output
    channel's 3x too large, the rest 3x too small, as a wrong calibration
    of that layer would give: the GroupNorm after it cannot undo uneven
    scales) loses float32's detections."""
    import numpy as np
    from onnx import numpy_helper
    cfg, model, images, files = confident_detector
    fp32, int8 = files[backend]
    broken = onnx.load(str(int8))
    producers = {out: node for node in broken.graph.node for out in node.output}
    initializers = {init.name: init for init in broken.graph.initializer}
    weights = {producers[node.input[1]].input[1] for node in broken.graph.node
               if node.op_type == 'Conv' and '/bbox_head/cls_convs.1/' in node.name
               and getattr(producers.get(node.input[1]), 'op_type', '') == 'DequantizeLinear'}
    assert weights, 'the head\'s classification convs are not quantized'
    for name in weights:
        scale = numpy_helper.to_array(initializers[name])
        wrong = np.where(np.arange(scale.size) % 2, 3.0, 1 / 3).astype(np.float32)
        initializers[name].CopyFrom(numpy_helper.from_array(scale * wrong.reshape(scale.shape),
                                                            name))
    onnx.save(broken, str(tmp_path / 'broken.onnx'))
    _, float32 = predict_both(cfg, model, fp32, images, backend)
    _, quantized = predict_both(cfg, model, tmp_path / 'broken.onnx', images, backend)
    assert any(lost_detections(exp, act, SCORE_THR, SCORE_ATOL)
               for exp, act in zip(float32, quantized))


def test_export_refuses_unsupported_opsets(tmp_path):
    _, model = build(SHAPES_CONFIG)
    with pytest.raises(ExportError, match='--opset must be at least 11'):
        export_onnx(model, str(tmp_path / 'x.onnx'), (64, 64), opset=9)
    _, two_stage = build(REPO / 'configs' / 'ghostnet' / 'faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py')
    with pytest.raises(ExportError, match='--opset must be at least 16 for two-stage detectors'):
        export_onnx(two_stage, str(tmp_path / 'y.onnx'), (64, 64), opset=15)
    assert not (tmp_path / 'x.onnx').exists() and not (tmp_path / 'y.onnx').exists()


def test_nms_per_class_capped_at_max_per_img_gives_mmdetections_detections(tmp_path):
    """The graph's NMS stops each class at max_per_img kept boxes; with every
    class keeping more than that, the detections are still MMDetection's
    (mmcv's batched_nms, then the max_per_img best), in PyTorch and in both
    runtimes."""
    from mmcv.ops import batched_nms
    from mmengine.structures import InstanceData
    from ghostnet_mmdet.deploy.export.nms import batched_class_nms
    generator = torch.Generator().manual_seed(0)
    count, classes, max_per_img = 900, 3, 40
    corners = torch.rand(1, count, 2, generator=generator) * 600
    boxes = torch.cat([corners, corners + 5 + 40 * torch.rand(1, count, 2, generator=generator)], 2)
    labels = torch.randint(0, classes, (1, count), generator=generator)
    # Class 0 scores above the others: the max_per_img best are all its own.
    scores = (torch.rand(1, count, generator=generator) + (labels == 0).float()) / 2
    valid = scores > 0.05
    chosen = valid[0]
    ref_dets, keep = batched_nms(boxes[0, chosen], scores[0, chosen], labels[0, chosen],
                                 dict(type='nms', iou_threshold=0.5))
    ref_labels = labels[0, chosen][keep]
    kept_per_class = torch.bincount(ref_labels, minlength=classes)
    assert kept_per_class.min() > max_per_img, kept_per_class  # the cap is in play
    expected = InstanceData(bboxes=ref_dets[:max_per_img, :4], scores=ref_dets[:max_per_img, 4],
                            labels=ref_labels[:max_per_img])

    class Nms(torch.nn.Module):
        def forward(self, boxes, scores, labels, valid):
            return batched_class_nms(boxes, scores, labels, valid, classes, 0.5, max_per_img)

    def as_instances(dets, labels):
        dets, labels = torch.as_tensor(dets)[0], torch.as_tensor(labels)[0]
        real = labels >= 0
        return InstanceData(bboxes=dets[real, :4], scores=dets[real, 4], labels=labels[real])

    inputs = (boxes, scores, labels, valid)
    with torch.no_grad():
        assert match_detections(expected, as_instances(*Nms()(*inputs))) is None
    path = str(tmp_path / 'nms.onnx')
    names = ['boxes', 'scores', 'labels', 'valid']
    torch.onnx.export(Nms(), inputs, path, input_names=names, opset_version=17, dynamo=False)
    feeds = {name: value.numpy() for name, value in zip(names, inputs)}
    import onnxruntime as ort
    import openvino as ov
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert match_detections(expected, as_instances(*session.run(None, feeds))) is None
    compiled = ov.Core().compile_model(path, 'CPU')
    results = compiled.create_infer_request().infer(feeds)
    assert match_detections(expected, as_instances(*[results[out] for out in compiled.outputs])) is None
