"""ExecuTorch (XNNPACK) as the second app runtime: LiteGFL gives PyTorch's
detections box for box through the program and the app's NumPy
post-processing; bad folders and programs are refused by name; the trained
miniature evaluates through tools/test.py --backend executorch as PyTorch
does."""
import json

import pytest

from ghostnet_mmdet.deploy import (DeployError, ExecuTorchDetector, ExportError,
                                   export_executorch, match_detections, prepare_for_export)

from .detection_utils import (BOX_ATOL, PARITY_CONFIGS, REPO, SCORE_ATOL, SIZE,
                              assert_app_runtime_refusals, build_config_detector,
                              calibrate_heads, copy_folder, padded_batch, predict_with_runtime,
                              read_metrics, run_tool_in_process)

pytest.importorskip('executorch.runtime')

TOOLS = REPO / 'tools'
# The app network is ncnn's (tests/test_ncnn.py checks it box for box for
# every head family and backbone version); here its XNNPACK lowering, on
# GFL's distributions (softmax and integral, LiteGFL's GhostPAN and
# depthwise head) and the dense family on the trained miniature (the tools'
# test). Lowering a detector takes ExecuTorch 20-40 s, hence not one test
# per family.
GFL = next(c for c in PARITY_CONFIGS if c.name.startswith('litegfl_ghostnet-1.0x'))


def exported(config, folder):
    """``config``'s detector (random weights, calibrated heads), exported
    to ExecuTorch at SIZE x SIZE: (cfg, model)."""
    cfg, model = build_config_detector(config)
    calibrate_heads(model, padded_batch())
    prepare_for_export(model, fuse=True)
    export_executorch(model, str(folder), (SIZE, SIZE),
                      data_preprocessor=cfg.model.data_preprocessor)
    return cfg, model


def assert_same_detections(cfg, model, folder):
    runtime = ExecuTorchDetector(str(folder), cfg.model.data_preprocessor, num_threads=2)
    for exp, act in zip(*predict_with_runtime(model, runtime, padded_batch())):
        assert len(exp) > 0, 'no detections to compare'
        mismatch = match_detections(exp, act, score_atol=SCORE_ATOL, box_rtol=1e-5,
                                    box_atol=BOX_ATOL)
        assert mismatch is None, mismatch


@pytest.fixture(scope='module')
def small_program(tmp_path_factory):
    folder = tmp_path_factory.mktemp('executorch') / 'model'
    cfg, model = exported(GFL, folder)
    return cfg, model, folder


def test_gfl_program_gives_pytorch_detections(small_program):
    assert_same_detections(*small_program)


def test_bad_programs_are_named(small_program, tmp_path):
    cfg, model, folder = small_program
    preprocessor = cfg.model.data_preprocessor
    with pytest.raises(DeployError, match='executorch model not found'):
        ExecuTorchDetector(str(tmp_path / 'missing'), preprocessor)
    with pytest.raises(DeployError, match=r'is not an executorch export .*/meta.json is missing'):
        ExecuTorchDetector(str(tmp_path), preprocessor)

    corrupt = copy_folder(folder, tmp_path, 'corrupt')
    (corrupt / 'model.pte').write_bytes(b'not a program')
    with pytest.raises(DeployError, match='is not an ExecuTorch program the runtime can load'):
        ExecuTorchDetector(str(corrupt), preprocessor)
    ncnn = copy_folder(folder, tmp_path, 'ncnn')
    meta = json.loads((folder / 'meta.json').read_text())
    (ncnn / 'meta.json').write_text(json.dumps(dict(meta, format='ghostnet_mmdet-ncnn')))
    with pytest.raises(DeployError, match='was not written by tools/deployment/pytorch2executorch'):
        ExecuTorchDetector(str(ncnn), preprocessor)
    assert_app_runtime_refusals(ExecuTorchDetector, folder, preprocessor, tmp_path, 'model.pte')
    with pytest.raises(ExportError, match=r'input size must be two ints >= 32, got \(16, 128\)'):
        export_executorch(model, str(tmp_path / 'small'), (16, SIZE))


def test_executorch_tools_on_the_trained_miniature(trained, capsys, monkeypatch):
    """pytorch2executorch.py on the trained miniature, then tools/test.py
    --backend executorch (CocoMetric) against the PyTorch checkpoint, and
    tools/demo.py --backend executorch."""
    folder, config, data_root, work_dir, _ = trained
    monkeypatch.chdir(folder)
    pytorch = read_metrics(work_dir)  # the evaluation at the end of training
    status, out, err = run_tool_in_process(
        TOOLS / 'deployment' / 'pytorch2executorch.py', config, work_dir / 'iter_6.pth', '--out',
        folder / 'et', '--verify', data_root / 'val' / '000000.jpg', capsys=capsys)
    assert status == 0, err[-3000:]
    assert 'the same detections' in out, out
    status, _, err = run_tool_in_process(TOOLS / 'test.py', config, folder / 'et', '--backend',
                                         'executorch', '--num-threads', '2', '--work-dir',
                                         folder / 'et_eval', capsys=capsys)
    assert status == 0, err[-3000:]
    runtime = read_metrics(folder / 'et_eval')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
        assert abs(pytorch[key] - runtime[key]) <= 0.002, (key, pytorch[key], runtime[key])
    status, _, err = run_tool_in_process(
        TOOLS / 'demo.py', data_root / 'val' / '000001.jpg', config, folder / 'et',
        '--backend', 'executorch', '--out-dir', folder / 'et_demo', '--score-thr', '0',
        capsys=capsys)
    assert status == 0, err[-3000:]
    assert (folder / 'et_demo' / '000001.png').is_file()
