"""ncnn (through pnnx) as the mobile backend: every single-stage head
family and backbone version gives PyTorch's detections box for box through
ncnn and the app's NumPy post-processing; the app's NMS and top-k are
torchvision's and torch's; bad folders are refused by name; the trained
miniature evaluates through tools/test.py --backend ncnn as PyTorch does."""
import json

import pytest
import torch

from ghostnet_mmdet.deploy import (DeployError, ExportError, NcnnDetector, export_ncnn,
                                   head_postprocess, match_detections, prepare_for_export)
from ghostnet_mmdet.deploy.app_postprocess import _top, class_nms, nms
from ghostnet_mmdet.deploy.export.ncnn import layer_counts

from .detection_utils import (BOX_ATOL, PARITY_CONFIGS, REPO, SCORE_ATOL, SIZE,
                              assert_app_runtime_refusals, build_config_detector,
                              calibrate_heads, copy_folder, norm_stats_from, padded_batch,
                              predict_with_runtime, random_detections, read_metrics,
                              run_tool_in_process)

pytest.importorskip('ncnn')
pytest.importorskip('pnnx')

TOOLS = REPO / 'tools'
# The ONNX parity configs (one per head family: dense with sigmoid and
# anchors and a GroupNorm head shared across levels, SSD's softmax, RTMDet's
# points, GFL's distributions with a GhostPAN neck, YOLOX, YOLOv3, two-stage
# with the app's RoIAlign between two networks; and GhostNetV2's DFC gate:
# pooling and nearest upsampling) but GhostNetV3 and MobileNetV2: deployed,
# they are convolutions, activations and concatenations, as GhostNet is, and
# their ncnn graphs hold no other layer. ncnn's float32 kernels are held to
# the ONNX runtimes' tolerance (SCORE_ATOL, BOX_ATOL).
# YOLOX-nano's CSPDarknet is refused (its Focus stem's strided slices stay
# PyTorch operators in pnnx's output): test_a_network_ncnn_cannot_run_is_refused.
NCNN_CONFIGS = [config for config in PARITY_CONFIGS if config.name not in (
    'retinanet_ghostnetv3-1.0x_fpn_1xb8-1.5k_shapes.py', 'ssdlite_mobilenetv2_1xb8-1.5k_shapes.py',
    'yolox_nano_1xb8-1.5k_shapes.py')]


def exported(config, folder):
    """``config``'s detector (random weights, calibrated heads), exported
    to ncnn at SIZE x SIZE: (cfg, model, meta)."""
    cfg, model = build_config_detector(config)
    images = padded_batch()
    if cfg.model.backbone.type == 'GhostNetV3':
        norm_stats_from(model, images)  # see tests/test_export_configs.py
    calibrate_heads(model, images)
    prepare_for_export(model, fuse=True)
    family = head_postprocess(model).family
    if family == 'yolox':  # every box that survives NMS: the config has no max_per_img
        model.bbox_head.test_cfg['max_per_img'] = 5000
    meta = export_ncnn(model, str(folder), (SIZE, SIZE), classes=None,
                       data_preprocessor=cfg.model.data_preprocessor)
    return cfg, model, meta


@pytest.mark.parametrize('config', NCNN_CONFIGS, ids=lambda p: p.stem)
def test_ncnn_gives_pytorch_detections(config, tmp_path):
    cfg, model, meta = exported(config, tmp_path)
    runtime = NcnnDetector(str(tmp_path), cfg.model.data_preprocessor, num_threads=2)
    # The second image padded: boxes clipped at the image.
    for exp, act in zip(*predict_with_runtime(model, runtime, padded_batch())):
        assert len(exp) > 0, 'no detections to compare'
        mismatch = match_detections(exp, act, score_atol=SCORE_ATOL, box_rtol=1e-5,
                                    box_atol=BOX_ATOL)
        assert mismatch is None, mismatch
    # Every layer is one ncnn runs (pnnx leaves what it cannot lower under
    # its PyTorch name, e.g. nn.Conv2d).
    assert not [kind for kind in meta['layers'] if '.' in kind], meta['layers']
    assert meta['layers'] == layer_counts(str(tmp_path / 'model.ncnn.param'))


def test_bad_export_arguments_are_named(tmp_path):
    cfg, model = build_config_detector(NCNN_CONFIGS[0])
    prepare_for_export(model, fuse=True)
    with pytest.raises(ExportError, match=r'input size must be two ints >= 32, got \(16, 128\)'):
        export_ncnn(model, str(tmp_path), (16, SIZE))


def test_a_network_ncnn_cannot_run_is_refused(tmp_path):
    """YOLOX-nano: pnnx keeps the Focus stem's strided slices as
    ``Tensor.slice``, which ncnn cannot load: refused by name, no folder
    that fails later."""
    config = next(c for c in PARITY_CONFIGS if c.name == 'yolox_nano_1xb8-1.5k_shapes.py')
    cfg, model = build_config_detector(config)
    prepare_for_export(model, fuse=True)
    with pytest.raises(ExportError, match='pnnx left operators ncnn does not have: '
                       'Tensor.slice'):
        export_ncnn(model, str(tmp_path), (SIZE, SIZE))
    assert not (tmp_path / 'meta.json').exists()


@pytest.mark.parametrize('ctr_clamp', [None, 8.0])
def test_app_box_decoding_is_mmdetections(ctr_clamp):
    """The app's NumPy delta decoding (two-stage RoI heads) is
    DeltaXYWHBBoxCoder.decode's, with and without add_ctr_clamp."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    from ghostnet_mmdet.deploy.app_postprocess import delta2bbox
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(200, 2, generator=generator) * 200
    rois = torch.cat([corners, corners + 4 + torch.rand(200, 2, generator=generator) * 60], 1)
    deltas = torch.randn(200, 4, generator=generator) * 2
    means, stds = (0., 0., 0., 0.), (0.1, 0.1, 0.2, 0.2)
    coder = DeltaXYWHBBoxCoder(means, stds, add_ctr_clamp=ctr_clamp is not None,
                               ctr_clamp=ctr_clamp or 32)
    expected = coder.decode(rois, deltas, max_shape=None)
    actual = delta2bbox(rois.numpy(), deltas.numpy(), means, stds, ctr_clamp=ctr_clamp)
    torch.testing.assert_close(torch.from_numpy(actual), expected, rtol=1e-5, atol=1e-4)


def test_app_nms_and_top_k_are_torchvisions_and_torchs():
    from torchvision.ops import batched_nms
    boxes, scores, labels = random_detections(300, 3, side=100)
    expected = batched_nms(boxes, scores, labels, 0.5)
    kept = class_nms(boxes.numpy(), scores.numpy(), labels.numpy(), 0.5, 1000)
    assert kept.tolist() == expected.tolist()
    assert nms(boxes.numpy(), scores.numpy(), 0.5).tolist() == \
        torch.ops.torchvision.nms(boxes, scores, 0.5).tolist()
    assert class_nms(boxes.numpy(), scores.numpy(), labels.numpy(), 0.5, 7).tolist() == \
        expected[:7].tolist()
    assert _top(scores.numpy(), 10).tolist() == scores.topk(10).indices.tolist()
    assert _top(scores.numpy(), 0).tolist() == scores.argsort(descending=True).tolist()


@pytest.fixture(scope='module')
def small_ncnn(tmp_path_factory):
    folder = tmp_path_factory.mktemp('ncnn') / 'model'
    cfg, _, _ = exported(NCNN_CONFIGS[0], folder)
    return cfg, folder


def test_bad_ncnn_folders_are_named(small_ncnn, tmp_path):
    cfg, folder = small_ncnn
    preprocessor = cfg.model.data_preprocessor
    with pytest.raises(DeployError, match='ncnn model not found'):
        NcnnDetector(str(tmp_path / 'missing'), preprocessor)
    with pytest.raises(DeployError, match=r'is not an ncnn export .*/meta.json is missing'):
        NcnnDetector(str(tmp_path), preprocessor)

    corrupt = copy_folder(folder, tmp_path, 'corrupt')
    (corrupt / 'model.ncnn.param').write_text('not a param file\n')
    with pytest.raises(DeployError, match='is not an ncnn .param file ncnn can load'):
        NcnnDetector(str(corrupt), preprocessor)
    truncated = copy_folder(folder, tmp_path, 'truncated')
    (truncated / 'model.ncnn.bin').write_bytes((folder / 'model.ncnn.bin').read_bytes()[:5000])
    with pytest.raises(DeployError, match='does not hold the weights'):
        NcnnDetector(str(truncated), preprocessor)
    foreign = copy_folder(folder, tmp_path, 'foreign')
    (foreign / 'meta.json').write_text(json.dumps({'classes': []}))
    with pytest.raises(DeployError, match='was not written by tools/deployment/pytorch2ncnn.py'):
        NcnnDetector(str(foreign), preprocessor)
    broken = copy_folder(folder, tmp_path, 'broken')
    (broken / 'meta.json').write_text('{')
    with pytest.raises(DeployError, match='is not the JSON that pytorch2ncnn.py writes'):
        NcnnDetector(str(broken), preprocessor)
    assert_app_runtime_refusals(NcnnDetector, folder, preprocessor, tmp_path, 'model.ncnn.param')


def test_ncnn_tools_on_the_trained_miniature(trained, capsys, monkeypatch):
    """pytorch2ncnn.py (float32 and --fp16) on the trained miniature, then
    tools/test.py --backend ncnn (CocoMetric) against the PyTorch checkpoint,
    and tools/demo.py --backend ncnn."""
    folder, config, data_root, work_dir, _ = trained
    monkeypatch.chdir(folder)
    pytorch = read_metrics(work_dir)  # the evaluation at the end of training
    for name, extra, tolerance in (('ncnn_fp32', (), 0.002), ('ncnn_fp16', ('--fp16', ), 0.010)):
        status, out, err = run_tool_in_process(
            TOOLS / 'deployment' / 'pytorch2ncnn.py', config, work_dir / 'iter_6.pth', '--out',
            folder / name, *extra, '--verify', data_root / 'val' / '000000.jpg', capsys=capsys)
        assert status == 0, err[-3000:]
        assert f'({"fp16" if extra else "fp32"} weights)' in out
        if not extra:
            assert 'the same detections' in out, out
        status, _, err = run_tool_in_process(TOOLS / 'test.py', config, folder / name,
                                             '--backend', 'ncnn', '--num-threads', '2',
                                             '--work-dir', folder / f'{name}_eval', capsys=capsys)
        assert status == 0, err[-3000:]
        runtime = read_metrics(folder / f'{name}_eval')
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
            assert abs(pytorch[key] - runtime[key]) <= tolerance, (name, key, pytorch[key],
                                                                  runtime[key])
    status, _, err = run_tool_in_process(
        TOOLS / 'demo.py', data_root / 'val' / '000001.jpg', config, folder / 'ncnn_fp32',
        '--backend', 'ncnn', '--out-dir', folder / 'ncnn_demo', '--score-thr', '0',
        capsys=capsys)
    assert status == 0, err[-3000:]
    assert (folder / 'ncnn_demo' / '000001.png').is_file()
    status, _, err = run_tool_in_process(TOOLS / 'test.py', config, folder / 'missing',
                                         '--backend', 'ncnn', capsys=capsys)
    assert status == 2 and 'checkpoint file not found' in err
    # The weights in half precision: half the file.
    assert (folder / 'ncnn_fp16' / 'model.ncnn.bin').stat().st_size < \
        0.55 * (folder / 'ncnn_fp32' / 'model.ncnn.bin').stat().st_size
