import copy

import pytest
import torch
from mmengine.config import ConfigDict
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from ghostnet_mmdet.models import GhostNet, ghostnet_channels

from .backbone_utils import randomize_norm_stats

# Measured on timm's network (test_checkpoint_conversion compares the two).
EXPECTED_CHANNELS = {
    0.5: {2: 12, 4: 20, 6: 56, 8: 80, 9: 480},
    1.0: {2: 24, 4: 40, 6: 112, 8: 160, 9: 960},
    1.1: {2: 28, 4: 44, 6: 124, 8: 176, 9: 1056},
    1.3: {2: 32, 4: 52, 6: 144, 8: 208, 9: 1248},
}
STRIDES = {0: 2, 1: 4, 2: 4, 3: 8, 4: 8, 5: 16, 6: 16, 7: 32, 8: 32, 9: 32}


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.1, 1.3])
def test_default_taps_are_strides_8_16_32(widen_factor):
    model = GhostNet(widen_factor=widen_factor).eval()
    expected = [EXPECTED_CHANNELS[widen_factor][i] for i in (4, 6, 8)]
    assert model.out_channels == expected
    assert GhostNet.get_out_channels(widen_factor) == expected
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [o.shape[1] for o in outs] == expected
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 12), (4, 6), (2, 3)]


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.1, 1.3])
@pytest.mark.parametrize('out_indices', [(2, 4, 6, 8), (9, ), (0, 3, 5, 7, 9)])
def test_out_indices_channels_and_strides(widen_factor, out_indices):
    model = GhostNet(widen_factor=widen_factor, out_indices=out_indices).eval()
    assert GhostNet.get_out_strides(out_indices) == [STRIDES[i] for i in out_indices]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert len(outs) == len(out_indices)
    channels = ghostnet_channels(widen_factor)
    for index, out in zip(out_indices, outs):
        assert out.shape[1] == channels[index] == model.out_channels[out_indices.index(index)]
        if index in EXPECTED_CHANNELS[widen_factor]:
            assert out.shape[1] == EXPECTED_CHANNELS[widen_factor][index]
        assert out.shape[2] == 64 // STRIDES[index]


def test_layers_after_last_output_are_not_built():
    assert len(GhostNet(out_indices=(4, 6, 8)).blocks) == 9
    assert len(GhostNet(out_indices=(2, )).blocks) == 3
    assert len(GhostNet(out_indices=(8, 9)).blocks) == 10


def test_any_positive_width_builds_and_runs():
    model = GhostNet(widen_factor=0.75, out_indices=(4, 6, 8, 9)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == model.out_channels
    assert all(c % 4 == 0 for c in model.out_channels)


def test_odd_input_size_gives_ceil_strides():
    model = GhostNet(out_indices=(2, 4, 6, 8)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 333, 517))
    # Every stride-2 conv has padding k//2, so each halving rounds up.
    sizes = [(333, 517)]
    for _ in range(5):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    assert [tuple(o.shape[2:]) for o in outs] == [sizes[2], sizes[3], sizes[4], sizes[5]]
    assert [tuple(o.shape[2:]) for o in outs] == [(84, 130), (42, 65), (21, 33), (11, 17)]


def test_built_from_registry_with_config():
    model = MODELS.build(dict(type='GhostNet', widen_factor=1.1))
    assert isinstance(model, GhostNet)
    assert model.out_channels == [44, 124, 176]


def _frozen_modules(model, frozen_stages):
    return [model.stem] + list(model.blocks[:frozen_stages])


@pytest.mark.parametrize('frozen_stages', [0, 1, 5, 9])
def test_frozen_stages_stop_gradients_and_freeze_norms(frozen_stages):
    model = GhostNet(frozen_stages=frozen_stages, out_indices=(4, 6, 8, 9))
    model.train()
    frozen = _frozen_modules(model, frozen_stages)
    trainable = list(model.blocks[frozen_stages:])
    for module in frozen:
        assert not module.training
        for layer in module.modules():
            if isinstance(layer, _BatchNorm):
                assert not layer.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in trainable:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    # Frozen running statistics do not move during a training forward.
    before = copy.deepcopy(model.stem.bn.running_mean)
    outs = model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.stem.bn.running_mean)
    sum(o.sum() for o in outs).backward()
    for module in frozen:
        assert all(p.grad is None for p in module.parameters())
    for module in trainable:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_frozen_stages_survive_train_eval_cycles():
    model = GhostNet(frozen_stages=3)
    model.eval()
    model.train()
    assert not model.blocks[2].training and model.blocks[3].training


def test_norm_eval_keeps_all_norms_in_eval_mode():
    model = GhostNet(norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    before = model.blocks[4][0].ghost1.primary_conv.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.blocks[4][0].ghost1.primary_conv.bn.running_mean)
    # Without norm_eval the statistics update.
    model = GhostNet(norm_eval=False)
    model.train()
    before = model.blocks[4][0].ghost1.primary_conv.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert not torch.equal(before, model.blocks[4][0].ghost1.primary_conv.bn.running_mean)


def test_with_cp_gives_same_outputs_and_gradients():
    reference = GhostNet(out_indices=(4, 6, 8), norm_eval=True)
    checkpointed = GhostNet(out_indices=(4, 6, 8), norm_eval=True, with_cp=True)
    randomize_norm_stats(reference)
    checkpointed.load_state_dict(reference.state_dict())
    assert all(b.with_cp for stage in checkpointed.blocks for b in stage)
    reference.train()
    checkpointed.train()
    x = torch.randn(2, 3, 64, 64)
    x_ref = x.clone().requires_grad_()
    x_cp = x.clone().requires_grad_()
    outs_ref = reference(x_ref)
    outs_cp = checkpointed(x_cp)
    for a, b in zip(outs_ref, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    sum((o * o).sum() for o in outs_ref).backward()
    sum((o * o).sum() for o in outs_cp).backward()
    torch.testing.assert_close(x_ref.grad, x_cp.grad, rtol=1e-5, atol=1e-6)
    grads_ref = dict((n, p.grad) for n, p in reference.named_parameters())
    for name, param in checkpointed.named_parameters():
        torch.testing.assert_close(param.grad, grads_ref[name], rtol=1e-5, atol=1e-6)


def test_channels_last_gives_same_outputs_and_gradients():
    reference = GhostNet(out_indices=(2, 4, 6, 8, 9))
    nhwc = GhostNet(out_indices=(2, 4, 6, 8, 9), channels_last=True)
    randomize_norm_stats(reference)
    nhwc.load_state_dict(reference.state_dict())
    exact = copy.deepcopy(reference).double()
    x = torch.randn(2, 3, 64, 64)

    # Against float64, NHWC's float32 results are as accurate as NCHW's. Not a
    # fixed tolerance: at random weights a ReLU input within rounding of zero
    # flips with the summation order (threads, layout), and how far that moves
    # an output or a gradient depends on the seed and the thread count (1e-6 to
    # 4e-3 relative, both layouts alike); a layout bug would be far off NCHW's.
    def as_accurate(got, ref, want):
        err_nhwc, err_nchw = ((t.double() - want).norm() / want.norm() for t in (got, ref))
        assert err_nhwc <= 3 * err_nchw + 1e-5, (float(err_nhwc), float(err_nchw))

    for mode in ('eval', 'train'):
        for model in (reference, nhwc, exact):
            getattr(model, mode)()
        outs_ref, outs_cl, outs_exact = reference(x), nhwc(x), exact(x.double())
        for a, b, want in zip(outs_ref, outs_cl, outs_exact):
            assert a.shape == b.shape
            assert b.is_contiguous(memory_format=torch.channels_last)
            as_accurate(b, a, want)
    for outs in (outs_ref, outs_cl, outs_exact):
        sum((o * o).mean() for o in outs).backward()

    def gradients(model):  # one vector, in the reference's parameter order
        grads = dict((n, p.grad) for n, p in model.named_parameters())
        return torch.cat([grads[name].flatten() for name, _ in reference.named_parameters()])

    as_accurate(gradients(nhwc), gradients(reference), gradients(exact))
    with pytest.raises(TypeError, match='channels_last must be True or False'):
        GhostNet(channels_last='yes')


@pytest.mark.parametrize('norm_cfg', [
    dict(type='SyncBN', requires_grad=True),
    dict(type='GN', num_groups=4, requires_grad=True),
    dict(type='BN', momentum=0.03, eps=0.001),
])
def test_norm_configs_build(norm_cfg):
    model = GhostNet(norm_cfg=norm_cfg)
    norm_types = {type(m).__name__ for m in model.modules()
                  if isinstance(m, (_BatchNorm, torch.nn.GroupNorm))}
    expected = {'SyncBN': 'SyncBatchNorm', 'GN': 'GroupNorm', 'BN': 'BatchNorm2d'}[norm_cfg['type']]
    assert norm_types == {expected}
    if norm_cfg['type'] != 'SyncBN':  # SyncBN needs a process group to run
        model.train()
        outs = model(torch.randn(2, 3, 64, 64))
        assert [o.shape[1] for o in outs] == [40, 112, 160]


def test_group_norm_that_cannot_split_channels_is_rejected_early():
    # At 1.1x, ghost modules have intrinsic maps of 22 channels (44 / 2).
    with pytest.raises(ValueError, match=r'num_groups=4 does not divide.*22') as info:
        GhostNet(widen_factor=1.1, norm_cfg=dict(type='GN', num_groups=4))
    assert 'divide every norm layer here: [1, 2]' in str(info.value)


def test_act_cfg_replaces_relu():
    model = GhostNet(act_cfg=dict(type='HSwish'))
    names = {type(m).__name__ for m in model.modules()}
    # mmcv builds HSwish as torch's Hardswish.
    assert 'Hardswish' in names and 'ReLU' not in names
    model.eval()
    with torch.no_grad():
        assert len(model(torch.randn(1, 3, 64, 64))) == 3


def test_ghost_module_relu_only_in_first_ghost_module():
    model = GhostNet()
    block = model.blocks[6][0]
    assert isinstance(block.ghost1.primary_conv.activate, torch.nn.ReLU)
    assert isinstance(block.ghost1.cheap_operation.activate, torch.nn.ReLU)
    assert not block.ghost2.primary_conv.with_activation
    assert not block.ghost2.cheap_operation.with_activation


def test_default_init_is_kaiming_for_convs_and_ones_for_norms():
    model = GhostNet()
    # Overwrite what PyTorch's own initialisation left, so that only
    # init_weights can restore it.
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.zero_()
        elif isinstance(module, _BatchNorm):
            module.weight.data.fill_(0.5)
    model.init_weights()
    assert model.is_init
    conv = model.blocks[6][3].ghost1.primary_conv.conv  # 1x1, 112 -> 240 channels
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    expected_std = (2.0 / fan_out) ** 0.5  # Kaiming normal, fan_out, ReLU
    assert abs(conv.weight.std().item() / expected_std - 1) < 0.1
    assert all(torch.all(m.weight == 1) for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(widen_factor=0), ValueError, 'widen_factor must be a positive finite number, but got 0'),
    (dict(widen_factor=-1.0), ValueError, 'but got -1.0'),
    (dict(widen_factor=float('inf')), ValueError, 'but got inf'),
    (dict(widen_factor='1.0'), TypeError, "widen_factor must be a positive number, but got '1.0'"),
    (dict(out_indices=(4, 10)), ValueError, r'out_indices must be in range\(0, 10\).*but got 10'),
    (dict(out_indices=(-1, )), ValueError, 'but got -1'),
    (dict(out_indices=()), ValueError, 'at least one output'),
    (dict(out_indices=(6, 4)), ValueError, r'strictly increasing, but got \(6, 4\)'),
    (dict(out_indices=(4.0, )), TypeError, 'out_indices must be ints'),
    (dict(frozen_stages=11), ValueError, r'frozen_stages must be in range\(-1, 11\).*but got 11'),
    (dict(frozen_stages=-2), ValueError, 'but got -2'),
    (dict(frozen_stages=1.5), TypeError, 'frozen_stages must be an int'),
    (dict(in_channels=0), ValueError, 'in_channels must be a positive int'),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        GhostNet(**kwargs)


def test_bad_out_indices_in_channel_helper():
    with pytest.raises(ValueError, match='but got 12'):
        GhostNet.get_out_channels(1.0, (4, 12))


@pytest.mark.parametrize('shape, message', [
    ((3, 64, 64), r'expects a 4D tensor \(N, C, H, W\), but got \(3, 64, 64\)'),
    ((1, 1, 3, 64, 64), r'but got \(1, 1, 3, 64, 64\)'),
    ((1, 1, 64, 64), r'built for 3 input channels.*has shape \(1, 1, 64, 64\) with 1 channels'),
])
def test_bad_input_raises_clear_error(shape, message):
    model = GhostNet().eval()
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_other_input_channels():
    """A grey-level GhostNet is the RGB one with its stem's kernels summed
    over the colours: fed a grey image, it gives what the RGB network gives
    for that image in three equal channels."""
    rgb = GhostNet().eval()
    grey = GhostNet(in_channels=1).eval()
    weights = rgb.state_dict()
    weights['stem.conv.weight'] = weights['stem.conv.weight'].sum(dim=1, keepdim=True)
    grey.load_state_dict(weights)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        expected, actual = rgb(x.repeat(1, 3, 1, 1)), grey(x)
    assert [tuple(f.shape) for f in actual] == [(1, 40, 8, 8), (1, 112, 4, 4), (1, 160, 2, 2)]
    for exp, act in zip(expected, actual):
        torch.testing.assert_close(act, exp, rtol=1e-4, atol=1e-5)


def test_config_dict_arguments():
    # Arguments from a config arrive as ConfigDicts and lists.
    model = MODELS.build(ConfigDict(type='GhostNet', out_indices=[4, 6, 8],
                                    norm_cfg=ConfigDict(type='BN', requires_grad=True)))
    assert model.out_indices == (4, 6, 8)
