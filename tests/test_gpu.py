"""Checks that need an NVIDIA GPU (``pytest -m gpu``, or tools/check_gpu.sh);
skipped where there is none. mmcv's CUDA ops against their CPU results,
every detector config training an iteration (with and without AMP) and
predicting on the GPU, channels_last and bf16 autocast."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

from .detection_utils import (CONFIGS, REPO, build_detector, random_detections, run_tool,
                              synthetic_batch, write_tiny_config)

CONFIGS = [p for p in CONFIGS if 'baselines' not in p.parts]

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]


def test_mmcv_was_compiled_with_cuda():
    from mmcv.ops import get_compiling_cuda_version
    assert get_compiling_cuda_version() != 'not available'


def test_nms_and_batched_nms_agree_with_cpu():
    from mmcv.ops import batched_nms, nms
    boxes, scores, labels = random_detections(500, 5)
    _, keep_cpu = nms(boxes, scores, 0.5)
    _, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
    assert torch.equal(keep_cpu, keep_gpu.cpu())
    cfg = dict(type='nms', iou_threshold=0.5)
    dets_cpu, keep_cpu = batched_nms(boxes, scores, labels, cfg)
    dets_gpu, keep_gpu = batched_nms(boxes.cuda(), scores.cuda(), labels.cuda(), cfg)
    assert torch.equal(keep_cpu, keep_gpu.cpu())
    torch.testing.assert_close(dets_gpu.cpu(), dets_cpu)


def test_roi_align_agrees_with_cpu():
    from mmcv.ops import roi_align
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 16, 32, 32, generator=generator)
    rois = torch.tensor([[0, 2., 3., 20., 25.], [1, 0., 0., 31., 31.], [0, 5.5, 6.5, 9., 30.]])
    cpu = roi_align(features, rois, (7, 7), 0.5, 2, 'avg', True)
    gpu = roi_align(features.cuda(), rois.cuda(), (7, 7), 0.5, 2, 'avg', True)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)


def test_sigmoid_focal_loss_agrees_with_the_python_version():
    from mmcv.ops import sigmoid_focal_loss
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 80, generator=generator)
    targets = torch.randint(0, 81, (300, ), generator=generator)  # 80 = background
    expected = py_sigmoid_focal_loss(logits, torch.nn.functional.one_hot(targets, 81)[:, :80].float(),
                                     gamma=2.0, alpha=0.25, reduction='sum')
    actual = sigmoid_focal_loss(logits.cuda(), targets.cuda(), 2.0, 0.25, None, 'sum')
    torch.testing.assert_close(actual.cpu(), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_every_config_trains_and_predicts_on_the_gpu(config, amp):
    model = build_detector(Config.fromfile(config)).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    wrapper = AmpOptimWrapper(optimizer=optimizer) if amp else OptimWrapper(optimizer=optimizer)
    num_classes = model.bbox_head.num_classes if hasattr(model, 'bbox_head') else \
        model.roi_head.bbox_head.num_classes
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)
    model.train()
    batch = synthetic_batch(num_images=2, size=(128, 160), num_classes=num_classes)
    log_vars = model.train_step(batch, wrapper)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values()), log_vars
    model.eval()
    with torch.no_grad():
        results = model.test_step(synthetic_batch(num_images=2, size=(128, 160),
                                                  num_classes=num_classes, seed=1))
    assert len(results) == 2 and results[0].pred_instances.bboxes.is_cuda


@pytest.mark.parametrize('version', ['GhostNet', 'GhostNetV2', 'GhostNetV3'])
def test_channels_last_and_bf16_autocast_give_finite_losses(version):
    from mmdet.registry import MODELS
    backbone = MODELS.build(dict(type=version, out_indices=(4, 6, 8), channels_last=True)).cuda()
    x = torch.randn(4, 3, 224, 224, device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16):
        loss = sum(out.float().square().mean() for out in backbone(x))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in backbone.parameters() if p.grad is not None)
    with torch.no_grad():
        backbone.eval()
        plain = MODELS.build(dict(type=version, out_indices=(4, 6, 8))).cuda().eval()
        plain.load_state_dict(backbone.state_dict())
        for fast, reference in zip(backbone(x), plain(x)):
            torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4)


def test_train_tool_with_amp_on_the_gpu(tmp_path):
    """The user's command: tools/train.py --amp, then tools/test.py."""
    config, _ = write_tiny_config(tmp_path)
    run_tool(REPO / 'tools' / 'train.py', config, '--amp', '--work-dir', tmp_path / 'w',
             cwd=tmp_path)
    result = run_tool(REPO / 'tools' / 'test.py', config, tmp_path / 'w' / 'iter_6.pth',
                      '--work-dir', tmp_path / 't', cwd=tmp_path)
    assert 'bbox_mAP' in result.stdout + result.stderr
    assert Path(tmp_path / 'w' / 'iter_6.pth').is_file()
