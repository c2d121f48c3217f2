"""Weights: fidelity to timm's GhostNet and the converter, on checkpoints
that the tests make (published weights cannot be downloaded here)."""
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils import mmdet_to_official, official_to_mmdet

from .backbone_utils import randomize_norm_stats, timm_taps

REPO = Path(__file__).resolve().parents[1]
CONVERTER = REPO / 'tools' / 'model_converters' / 'ghostnet_to_mmdet.py'
TIMM_NAMES = {0.5: 'ghostnet_050', 1.0: 'ghostnet_100', 1.3: 'ghostnet_130'}
# timm block index for each of our output indices: the same points.
TAPS = (2, 4, 6, 8, 9)


def make_timm(widen_factor):
    model = timm.create_model(TIMM_NAMES[widen_factor], pretrained=False)
    randomize_norm_stats(model)
    return model.eval()


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.3])
def test_converted_timm_weights_give_timm_features(widen_factor):
    reference = make_timm(widen_factor)
    ours = GhostNet(widen_factor=widen_factor, out_indices=TAPS).eval()
    ours.load_state_dict(official_to_mmdet(reference.state_dict()), strict=True)
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        expected = timm_taps(reference, x, TAPS)
        actual = ours(x)
    for exp, act in zip(expected, actual):
        assert act.shape == exp.shape
        assert (act - exp).abs().max().item() <= 1e-5


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.3])
def test_feature_extractor_has_timms_parameter_count(widen_factor):
    reference = make_timm(widen_factor)
    ours = GhostNet(widen_factor=widen_factor, out_indices=(4, 6, 8, 9))
    timm_count = sum(p.numel() for name, p in reference.named_parameters()
                     if not name.startswith(('conv_head', 'classifier')))
    assert sum(p.numel() for p in ours.parameters()) == timm_count
    # Through stage 8 only (the FPN taps), against the same timm modules.
    ours_fpn = GhostNet(widen_factor=widen_factor)
    timm_fpn = sum(p.numel() for name, p in reference.named_parameters()
                   if not name.startswith(('conv_head', 'classifier', 'blocks.9')))
    assert sum(p.numel() for p in ours_fpn.parameters()) == timm_fpn


def test_full_timm_parameter_count_matches_the_paper():
    # 5.18M with the ImageNet head: the paper's 5.2M.
    count = sum(p.numel() for p in make_timm(1.0).parameters())
    assert count == 5_182_508


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.1, 1.3])
def test_round_trip_is_exact(widen_factor):
    ours = GhostNet(widen_factor=widen_factor, out_indices=TAPS)
    randomize_norm_stats(ours)
    state_dict = ours.state_dict()
    back = official_to_mmdet(mmdet_to_official(state_dict))
    assert list(back) == list(state_dict)
    assert all(torch.equal(back[k], state_dict[k]) for k in state_dict)


def test_official_keys_are_the_reference_layout():
    official = mmdet_to_official(GhostNet(out_indices=TAPS).state_dict())
    reference = {k for k in make_timm(1.0).state_dict()
                 if not k.startswith(('conv_head', 'classifier'))}
    assert set(official) == reference
    assert {'conv_stem.weight', 'bn1.running_var', 'blocks.9.0.conv.weight',
            'blocks.9.0.bn1.weight', 'blocks.3.0.se.conv_reduce.bias',
            'blocks.1.0.shortcut.3.weight', 'blocks.1.0.bn_dw.weight'} <= set(official)


def test_unknown_keys_are_rejected_by_the_converter():
    state_dict = make_timm(1.0).state_dict()
    state_dict['layer1.0.conv1.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match=r'1 key\(s\) are not part of a GhostNet.*layer1.0.conv1.weight'):
        official_to_mmdet(state_dict)


def run_converter(*args, subprocess_run=False):
    """The converter on ``args``: in this interpreter (its ``main(argv)``),
    or, with ``subprocess_run``, as a user runs it."""
    if subprocess_run:
        return subprocess.run([sys.executable, str(CONVERTER), *map(str, args)],
                              capture_output=True, text=True, cwd=REPO)
    import contextlib
    import importlib.util
    import io
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location('converter_tool', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = module.main([str(a) for a in args])
    return SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope='module')
def timm_checkpoints(tmp_path_factory):
    """timm ghostnet_100 weights saved the ways they are published."""
    tmp = tmp_path_factory.mktemp('timm')
    model = make_timm(1.0)
    state_dict = model.state_dict()
    paths = dict(pth=tmp / 'ghostnet_100.pth', safetensors=tmp / 'ghostnet_100.safetensors',
                 wrapped=tmp / 'official_wrapped.pth', no_counters=tmp / 'official_73.98.pth')
    torch.save(state_dict, paths['pth'])
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(paths['safetensors']))
    torch.save({'state_dict': state_dict, 'epoch': 3}, paths['wrapped'])
    # The official release has no num_batches_tracked buffers.
    torch.save({k: v for k, v in state_dict.items() if 'num_batches_tracked' not in k},
               paths['no_counters'])
    return model, paths


@pytest.mark.parametrize('kind', ['pth', 'safetensors', 'wrapped', 'no_counters'])
def test_converter_cli_output_loads_through_init_cfg(kind, timm_checkpoints, tmp_path):
    reference, paths = timm_checkpoints
    out = tmp_path / 'converted.pth'
    # The command line once, as a user runs it; the other layouts in process.
    result = run_converter(paths[kind], out, subprocess_run=kind == 'pth')
    assert result.returncode == 0, result.stderr
    assert 'wrote' in result.stdout and out.exists()

    model = GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(out)))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = timm_taps(reference, x, TAPS)
        actual = model(x)
    for exp, act in zip([expected[1], expected[2], expected[3]], actual):
        assert (act - exp).abs().max().item() <= 1e-5


def test_official_checkpoint_loads_directly_through_init_cfg(timm_checkpoints):
    reference, paths = timm_checkpoints
    model = GhostNet(out_indices=(9, ), init_cfg=dict(type='Pretrained',
                                                      checkpoint=str(paths['no_counters'])))
    model.init_weights()
    assert torch.equal(model.blocks[9].conv.weight, reference.blocks[9][0].conv.weight)


def test_converter_round_trip_through_files(timm_checkpoints, tmp_path):
    reference, paths = timm_checkpoints
    ours, back, again = tmp_path / 'ours.pth', tmp_path / 'official.pth', tmp_path / 'again.pth'
    assert run_converter(paths['pth'], ours).returncode == 0
    result = run_converter('--reverse', ours, back)
    assert result.returncode == 0, result.stderr
    official = torch.load(back)
    expected = {k: v for k, v in reference.state_dict().items()
                if not k.startswith(('conv_head', 'classifier'))}
    assert set(official) == set(expected)
    assert all(torch.equal(official[k], expected[k]) for k in expected)
    assert run_converter(back, again).returncode == 0
    first, second = torch.load(ours)['state_dict'], torch.load(again)['state_dict']
    assert list(first) == list(second)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_detector_checkpoint_backbone_prefix(tmp_path):
    backbone = GhostNet(out_indices=TAPS)
    randomize_norm_stats(backbone)
    detector = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 40, 1, 1)
    path = tmp_path / 'detector.pth'
    torch.save({'state_dict': detector, 'meta': {'epoch': 12}}, path)
    model = GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    model.init_weights()
    assert torch.equal(model.blocks[4][0].ghost1.primary_conv.bn.running_mean,
                       backbone.blocks[4][0].ghost1.primary_conv.bn.running_mean)
    result = run_converter('--reverse', '--prefix', 'backbone.', path, tmp_path / 'o.pth')
    assert result.returncode == 0, result.stderr


def test_other_width_is_rejected_with_the_mismatches(timm_checkpoints, tmp_path):
    _, paths = timm_checkpoints
    model = GhostNet(widen_factor=1.3, init_cfg=dict(type='Pretrained', checkpoint=str(paths['pth'])))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'does not match this GhostNet (widen_factor=1.3)' in message
    assert 'refusing a partial load' in message
    assert 'shape mismatch' in message and 'stem.conv.weight: checkpoint (16, 3, 3, 3) vs model (20, 3, 3, 3)' in message
    result = run_converter('--widen-factor', '0.5', paths['pth'], tmp_path / 'x.pth')
    assert result.returncode == 1
    assert 'shape mismatch' in result.stderr and not (tmp_path / 'x.pth').exists()


def test_other_architecture_is_rejected(tmp_path):
    import torchvision
    path = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'missing in the checkpoint' in message and 'stem.conv.weight' in message
    assert 'not in the model' in message and 'conv1.weight' in message
    result = run_converter(path, tmp_path / 'x.pth')
    assert result.returncode == 1 and 'error:' in result.stderr


def test_truncated_checkpoint_is_rejected(timm_checkpoints, tmp_path):
    _, paths = timm_checkpoints
    state_dict = official_to_mmdet(torch.load(paths['pth']))
    del state_dict['blocks.6.2.ghost2.primary_conv.conv.weight']
    path = tmp_path / 'partial.pth'
    torch.save(state_dict, path)
    model = GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'missing in the checkpoint \(1\): blocks.6.2.ghost2'):
        model.init_weights()


def test_missing_checkpoint_file(tmp_path):
    model = GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        model.init_weights()
    result = run_converter(tmp_path / 'nope.pth', tmp_path / 'x.pth')
    assert result.returncode == 1 and 'not found' in result.stderr
