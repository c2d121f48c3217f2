"""GhostNetV2 and GhostNetV3: faithful to timm 1.0.31 (the reference code's
port) with weights converted by our converter, V3's re-parameterisation,
one plan for all versions, sizes, FLOPs and the converter's checks."""
import math

import pytest
import torch
from timm.layers import make_divisible as timm_make_divisible

from mmdet.models.utils import make_divisible
from ghostnet_mmdet.apis import identify_ghostnet
from ghostnet_mmdet.models import GHOSTNET_VERSIONS, GhostNet, GhostNetV2, GhostNetV3, ghostnet_plan
from ghostnet_mmdet.utils.checkpoint_conversion import mmdet_to_official
from ghostnet_mmdet.utils.complexity import conv_linear_macs, imagenet_head_macs

from .backbone_utils import TAPS, TIMM, ours_from_timm, randomize_norm_stats, timm_model, timm_taps
from .detection_utils import REPO, run_tool_in_process

CLASSES = GHOSTNET_VERSIONS
CONVERTER = REPO / 'tools' / 'model_converters' / 'ghostnet_to_mmdet.py'


def assert_close(expected, actual, tolerance=1e-5):
    for exp, act in zip(expected, actual):
        assert exp.shape == act.shape
        assert (exp - act).abs().max().item() <= tolerance, (exp - act).abs().max().item()


@pytest.mark.parametrize('version, width', sorted(TIMM))
def test_features_and_parameters_equal_timms(version, width):
    reference = timm_model(version, width)
    ours = ours_from_timm(version, width, reference)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert_close(timm_taps(reference, x, TAPS), ours(x))
    timm_count = sum(p.numel() for name, p in reference.named_parameters()
                     if not name.startswith(('conv_head', 'classifier')))
    assert sum(p.numel() for p in ours.parameters()) == timm_count


@pytest.mark.parametrize('width', [0.5, 1.0, 1.3])
def test_v3_deploy_form_equals_training_form_and_timms_deploy_form(width):
    reference = timm_model('v3', width)
    ours = ours_from_timm('v3', width, reference)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        trained = ours(x)
        ours.switch_to_deploy()
        deployed = ours(x)
        reference.convert_to_deploy()
        timm_deployed = timm_taps(reference, x, TAPS)
    for exp, act in zip(trained, deployed):
        assert (exp - act).abs().max().item() <= 1e-5 * exp.abs().max().item() + 1e-6
    assert_close(timm_deployed, deployed)
    names = {type(m).__name__ for m in ours.modules()}
    assert 'BatchNorm2d' not in names
    assert all(m.deploy for m in ours.modules() if type(m).__name__ == 'RepConvModule')


def test_v1_trained_with_v3s_branches_deploys_as_v1(tmp_path):
    """GhostNet(num_branches=3): V3's training branches on V1's network;
    deployed, the same numbers in V1's deploy form, whose checkpoint a plain
    GhostNet(deploy=True) loads."""
    rep = GhostNet(out_indices=TAPS, num_branches=3)
    randomize_norm_stats(rep)
    assert sum(p.numel() for p in rep.parameters()) > \
        sum(p.numel() for p in GhostNet(out_indices=TAPS).parameters())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        trained = rep.eval()(x)
        rep.switch_to_deploy()
        deployed = rep(x)
    for exp, act in zip(trained, deployed):
        assert (exp - act).abs().max().item() <= 1e-5 * exp.abs().max().item() + 1e-6
    path = tmp_path / 'rep_deploy.pth'
    torch.save(dict(state_dict=rep.state_dict()), path)
    plain = GhostNet(out_indices=TAPS, deploy=True,
                     init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    plain.init_weights()
    with torch.no_grad():
        for exp, act in zip(deployed, plain.eval()(x)):
            assert torch.equal(exp, act)
    with pytest.raises(ValueError, match=r"num_branches must be None \(the version's own: 0\) "
                       r"or an int >= 0, but got -1"):
        GhostNet(num_branches=-1)


def test_deployed_v3_is_a_deployed_v2_and_its_checkpoint_loads(tmp_path):
    v3 = GhostNetV3(out_indices=TAPS)
    randomize_norm_stats(v3)
    v3.eval().switch_to_deploy()
    v2 = GhostNetV2(out_indices=TAPS)
    v2.eval().switch_to_deploy()
    shapes = {k: v.shape for k, v in v3.state_dict().items()}
    assert shapes == {k: v.shape for k, v in v2.state_dict().items()}
    assert shapes == {k: v.shape for k, v in
                      GhostNetV2(out_indices=TAPS, deploy=True).state_dict().items()}
    path = tmp_path / 'v3_deploy.pth'
    torch.save(dict(state_dict=v3.state_dict()), path)
    rebuilt = GhostNetV3(out_indices=TAPS, deploy=True,
                         init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    rebuilt.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for exp, act in zip(v3(x), rebuilt.eval()(x)):
            assert torch.equal(exp, act)
    trainable = GhostNetV3(out_indices=TAPS)
    assert sum(p.numel() for p in trainable.parameters()) > \
        sum(p.numel() for p in rebuilt.parameters())


@pytest.mark.parametrize('version', ['v2', 'v3'])
@pytest.mark.parametrize('size', [(333, 517), (64, 64)])
def test_odd_and_small_inputs_as_the_reference(version, size):
    width = 1.0
    reference = timm_model(version, width)
    ours = ours_from_timm(version, width, reference)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert_close(timm_taps(reference, x, TAPS), ours(x))


@pytest.mark.parametrize('version', ['v2', 'v3'])
def test_feature_maps_of_one_pixel(version):
    """Where the reference code fails (2x2 pooling of a 1x1 map), the
    attention is computed without pooling in that direction."""
    reference = timm_model(version, 1.0)
    x = torch.randn(1, 3, 32, 64)
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            timm_taps(reference, x, TAPS)
    ours = ours_from_timm(version, 1.0, reference)
    with torch.no_grad():
        outputs = ours(x)
    assert [tuple(o.shape[-2:]) for o in outputs] == [(4, 8), (2, 4), (1, 2), (1, 2)]
    assert all(torch.isfinite(o).all() for o in outputs)


@pytest.mark.parametrize('version', ['v1', 'v2', 'v3'])
def test_one_plan_for_channels_modules_and_norm_checks(version):
    plan = ghostnet_plan(1.3, version)
    model = CLASSES[version](widen_factor=1.3, out_indices=tuple(range(10)))
    built = [block for stage in model.blocks[:9] for block in stage]
    assert len(built) == len(plan.blocks) == 16
    for spec, block in zip(plan.blocks, built):
        first_conv = next(m for m in block.modules() if isinstance(m, torch.nn.Conv2d))
        assert first_conv.in_channels == spec.in_channels
        assert block.ghost2.out_channels == spec.out_channels
        assert block.ghost1.out_channels == spec.mid_channels
        assert (block.ghost1.short_conv is not None) == spec.attention
    assert [b.attention for b in plan.blocks] == [version != 'v1' and i > 1 for i in range(16)]
    norms = {m.num_features for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert norms == set(plan.norm_channels(10))
    assert model.stage_channels == plan.output_channels() == \
        GhostNet.get_out_channels(1.3, tuple(range(10)))


def test_group_norm_check_covers_attention_channels():
    # 1.0x: every ghost module has an even number of channels, but V2's
    # attention norms see the expansion counts (e.g. 200 and 184).
    plan = ghostnet_plan(1.0, 'v2')
    assert 184 in plan.norm_channels() and 184 not in ghostnet_plan(1.0, 'v1').norm_channels()
    with pytest.raises(ValueError, match=r'num_groups=16 does not divide the channel counts'):
        GhostNetV2(norm_cfg=dict(type='GN', num_groups=16))
    GhostNetV2(norm_cfg=dict(type='GN', num_groups=4))  # 4 divides every count


def test_mmdetections_make_divisible_is_the_reference_rounding():
    for width in [0.25, 0.5, 0.75, 1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 2.0]:
        for channels in [16, 24, 40, 48, 72, 80, 112, 120, 160, 184, 200, 240, 480, 672, 960]:
            assert make_divisible(channels * width, 4) == timm_make_divisible(channels * width, 4)


@pytest.mark.parametrize('version, deploy, expected', [
    ('v1', False, 141.15e6), ('v2', False, 167.0e6), ('v3', False, 404e6), ('v3', True, 167.0e6)])
def test_flops_at_224_with_the_imagenet_head(version, deploy, expected):
    model = CLASSES[version](out_indices=(9, ))
    if deploy:
        model.eval().switch_to_deploy()
    macs = conv_linear_macs(model, torch.randn(1, 3, 224, 224))['total'] + \
        imagenet_head_macs(model.plan.final_channels)
    assert math.isclose(macs, expected, rel_tol=0.005), macs / 1e6


@pytest.mark.parametrize('version, width', [('v2', 1.3), ('v3', 1.0)])
def test_converter_takes_timm_and_official_layouts(version, width, tmp_path, capsys):
    reference = timm_model(version, width)
    state = reference.state_dict()
    if version == 'v3':  # the official V3 code: 'bn.' in branches, FLOPs counters
        state = {k.replace('.bn1.', '.bn.') if '_rpr_' in k else k: v for k, v in state.items()}
        state['blocks.3.0.total_ops'] = torch.zeros(1)
    torch.save(state, tmp_path / 'official.pth')
    args = [tmp_path / 'official.pth', tmp_path / 'ours.pth', '--version', version,
            '--widen-factor', width]
    status, out, err = run_tool_in_process(CONVERTER, *args, capsys=capsys)
    assert status == 0, err
    model = CLASSES[version](widen_factor=width, out_indices=TAPS,
                             init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'ours.pth')))
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_close(timm_taps(reference, x, TAPS), model.eval()(x))
    # Back to timm's layout, exactly.
    status, _, err = run_tool_in_process(CONVERTER, tmp_path / 'ours.pth', tmp_path / 'back.pth',
                                         '--reverse', '--version', version, '--widen-factor',
                                         width, capsys=capsys)
    assert status == 0, err
    back = torch.load(tmp_path / 'back.pth')
    expected = {k: v for k, v in reference.state_dict().items()
                if not k.startswith(('conv_head', 'classifier'))}
    assert back.keys() == expected.keys()
    assert all(torch.equal(back[k], expected[k]) for k in expected)


def test_converter_names_the_wrong_version_or_width(tmp_path, capsys):
    torch.save(timm_model('v2', 1.0).state_dict(), tmp_path / 'v2.pth')
    for args, words in (
            (['--version', 'v3'], 'it is a GhostNetV2-1.0x, not a GhostNetV3-1.0x: pass --version v2'),
            (['--version', 'v1'], 'it is a GhostNetV2-1.0x, not a GhostNet-1.0x: pass --version v2'),
            (['--version', 'v2', '--widen-factor', '1.3'],
             'it is a GhostNetV2-1.0x, not a GhostNetV2-1.3x: pass --widen-factor 1.0')):
        status, _, err = run_tool_in_process(CONVERTER, tmp_path / 'v2.pth', tmp_path / 'o.pth',
                                             *args, capsys=capsys)
        assert status != 0 and words in err, err
        assert not (tmp_path / 'o.pth').exists()


def test_identify_names_every_version():
    for version, cls in CLASSES.items():
        state = cls(widen_factor=1.3, out_indices=(4, 6, 8)).state_dict()
        name = {'v1': 'GhostNet', 'v2': 'GhostNetV2', 'v3': 'GhostNetV3'}[version]
        assert identify_ghostnet(state) == f'a {name}-1.3x'
        assert identify_ghostnet(mmdet_to_official(state)) == f'a {name}-1.3x'


@pytest.mark.parametrize('version', ['v3'])
def test_forward_compiles_as_one_graph(version):
    """torch.compile takes the whole forward without graph breaks (V3 has
    every piece: DFC attention and the branches), in NHWC as on GPUs."""
    import torch._dynamo
    # Through stage 4: every kind of block (DFC attention from block 2 on,
    # the branches, stride-2 and identity shortcuts, squeeze-excite), a third
    # of the network to trace.
    model = CLASSES[version](out_indices=(4, ), channels_last=True).eval()
    explanation = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 64))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
