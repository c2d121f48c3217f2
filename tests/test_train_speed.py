"""What the CPU training speed-ups change, checked against what they replace.

The shapes recipe's optimizer is torch's fused AdamW (one kernel for every
parameter instead of a loop over them): it must be what MMEngine builds from
the config, and it must make the same updates as the per-parameter AdamW.
"""
import copy

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from ghostnet_mmdet.models.backbones import GhostNet

from .detection_utils import REPO

MAIN_JOB = REPO / 'configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py'


def _step(model, optim_cfg):
    """One training step of the backbone through MMEngine's optim wrapper
    (backward, gradient clipping, step)."""
    wrapper = build_optim_wrapper(model, optim_cfg)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    wrapper.update_params(sum(out.square().mean() for out in model(x)))
    return wrapper


def test_main_job_builds_fused_adamw_with_the_loop_adamws_updates():
    cfg = Config.fromfile(MAIN_JOB)
    model = GhostNet(widen_factor=0.5, out_indices=(4, 6, 8), norm_eval=False).train()
    looped = copy.deepcopy(model)
    start = copy.deepcopy(model)

    wrapper = _step(model, copy.deepcopy(cfg.optim_wrapper))
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    assert wrapper.optimizer.defaults['fused'] is True
    assert wrapper.clip_grad_kwargs == dict(max_norm=10, norm_type=2)
    loop_cfg = copy.deepcopy(cfg.optim_wrapper)
    loop_cfg.optimizer.fused = False
    loop_wrapper = _step(looped, loop_cfg)
    assert not loop_wrapper.optimizer.defaults['fused']

    # One step from the same weights and gradients: the two kernels differ only
    # in the rounding of the same arithmetic (measured 6e-8; weights move ~2e-3).
    for (name, fused), (_, plain) in zip(model.state_dict().items(), looped.state_dict().items()):
        if fused.is_floating_point():
            torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6, msg=name)
    moved = max(float((a - b).abs().max()) for a, b in zip(model.parameters(), start.parameters()))
    assert moved > 1e-3

    # Further steps from the same gradients keep them together (moments and
    # weight decay included). Training steps would not: Adam divides by the
    # root of tiny second moments, so the last bit of a gradient near zero
    # changes the update, and the two runs part like runs on two machines.
    optimizers = [opt.optimizer for opt in (wrapper, loop_wrapper)]
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=generator) for p in model.parameters()]
        for net, optimizer in zip((model, looped), optimizers):
            for p, g in zip(net.parameters(), grads):
                p.grad = g.clone()
            optimizer.step()
    for (name, fused), (_, plain) in zip(model.named_parameters(), looped.named_parameters()):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6, msg=name)
