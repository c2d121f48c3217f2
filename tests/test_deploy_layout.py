"""The layout-clean deploy form: every ghost module's halves padded with zero
channels to a multiple of the runtimes' channel block, the same numbers as
the plain network, and an exported graph whose backbone a CPU runtime can
keep in its blocked layout throughout."""
import re

import pytest
import torch

from ghostnet_mmdet.deploy import export_backbone_onnx
from ghostnet_mmdet.deploy.layout import layout_breaks
from ghostnet_mmdet.models import GhostNet, GhostNetV2, GhostNetV3
from ghostnet_mmdet.models.layers import ChannelLayout, GhostModule
from ghostnet_mmdet.utils.benchmark import processor_name

from .conftest import randomize_norm_stats
from .test_ghostnet_family import ours_from_timm, timm_model

CLASSES = {'v1': GhostNet, 'v2': GhostNetV2, 'v3': GhostNetV3}
TAPS = (2, 4, 6, 8, 9)


def assert_relative_close(expected, actual, rtol=1e-5):
    for exp, act in zip(expected, actual):
        assert exp.shape == act.shape
        scale = exp.abs().max().item()
        assert (exp - act).abs().max().item() <= rtol * scale + 1e-6, scale


@pytest.mark.parametrize('version', ['v1', 'v2', 'v3'])
@pytest.mark.parametrize('width', [0.5, 1.0, 1.3])
def test_padded_deploy_form_equals_the_plain_network(version, width):
    if version == 'v3':
        # V3's summed branches from a Kaiming start grow to 1e8 by stage 8;
        # timm's initialisation keeps them at the scale of trained weights.
        model = ours_from_timm('v3', width, timm_model('v3', width))
    else:
        model = CLASSES[version](widen_factor=width, out_indices=TAPS)
        randomize_norm_stats(model)
    model.eval()
    x = torch.randn(1, 3, 96, 128)
    block = 16 if width == 1.0 else 8  # both blocks, without doubling the cases
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy(channel_block=block)
        actual = model(x)
        model.deploy_split_halves = True  # what ONNX export runs by default
        split = model(x)
    assert_relative_close(expected, actual)
    assert_relative_close(expected, split)
    assert [a.shape[1] for a in actual] == model.out_channels
    ghost_modules = [m for m in model.modules() if isinstance(m, GhostModule)]
    assert ghost_modules and all(m.output_channels % block == 0 for m in ghost_modules)
    # Padding did pad: at these widths some halves are off the block.
    assert any(m.output_channels != m.out_channels for m in ghost_modules)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % block == 0 for c in convs)
    assert all(c.in_channels % block == 0 for c in convs if c.in_channels != 3)


def test_channel_block_one_is_the_plain_deploy_form_and_bad_blocks_are_named():
    plain = GhostNet(out_indices=TAPS)
    randomize_norm_stats(plain)
    plain.eval()
    padded = GhostNet(out_indices=TAPS)
    padded.load_state_dict(plain.state_dict())
    padded.eval()
    plain.switch_to_deploy(channel_block=1)
    padded.switch_to_deploy()  # deploy_channel_block, 8 by default
    plain_params = sum(p.numel() for p in plain.parameters())
    assert sum(p.numel() for p in padded.parameters()) > plain_params
    assert all(m.output_channels == m.out_channels for m in plain.modules()
               if isinstance(m, GhostModule))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_relative_close(plain(x), padded(x))
    for bad in (0, -8, 2.5, True, '8'):
        with pytest.raises(ValueError, match=r'deploy_channel_block must be a positive int .*'
                           + re.escape(f'but got {bad!r}')):
            GhostNet(deploy_channel_block=bad)


def test_channel_layout_of_a_ghost_module():
    # 40 channels: halves of 20, padded to 24 each; 39: the last cheap channel is padding.
    layout = ChannelLayout.ghost(40, 8)
    assert layout.total == 48 and layout.runs() == ((0, 20), (24, 44))
    odd = ChannelLayout.ghost(39, 8)
    assert odd.total == 48 and odd.runs() == ((0, 20), (24, 43))
    x = torch.arange(48.).reshape(1, 48, 1, 1)
    assert layout.to_natural(x).flatten().tolist() == list(range(20)) + list(range(24, 44))
    assert ChannelLayout.plain(40, 16).runs() == ((0, 40), )


def export_backbone(model, path, size=64):
    export_backbone_onnx(model, str(path), (size, size))


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_exported_deploy_backbone_has_no_layout_breaks(version, tmp_path):
    """The ONNX graph of the deploy form: no convolution off the block, no
    Concat of tensors off the block (the plain deploy form has both: the
    check can fail)."""
    padded = CLASSES[version](out_indices=(4, 6, 8)).eval()
    padded.switch_to_deploy(channel_block=8)
    export_backbone(padded, tmp_path / 'padded.onnx')
    assert layout_breaks(str(tmp_path / 'padded.onnx'), 8, '/backbone/') == []
    plain = CLASSES[version](out_indices=(4, 6, 8), deploy_split_halves=False).eval()
    plain.switch_to_deploy(channel_block=1)
    export_backbone(plain, tmp_path / 'plain.onnx')
    breaks = layout_breaks(str(tmp_path / 'plain.onnx'), 8, '/backbone/')
    assert any('Concat of [12, 12]' in b for b in breaks), breaks[:5]
    assert any('Conv' in b for b in breaks)
    # onnxruntime's own layout pass agrees: fewer reorders in the padded graph.
    assert reorders(tmp_path / 'padded.onnx', tmp_path) < reorders(tmp_path / 'plain.onnx', tmp_path)


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_exported_deploy_backbone_keeps_ghost_halves_apart(version, tmp_path):
    """ONNX export of the deploy form: no Concat inside the backbone, only
    one per output that joins its two halves; the same feature maps in
    onnxruntime; fewer operators for the runtime to reorder than the
    concatenating form (which has a Concat per ghost module: the check can
    fail)."""
    import onnx
    import onnxruntime as ort
    model = CLASSES[version](out_indices=(4, 6, 8)).eval()
    randomize_norm_stats(model)
    block = runtime_block()
    model.switch_to_deploy(channel_block=block)
    export_backbone(model, tmp_path / 'split.onnx', size=96)
    graph = onnx.load(str(tmp_path / 'split.onnx')).graph
    concats = channel_concats(graph)
    ghost_modules = [m for m in model.modules() if isinstance(m, GhostModule)]
    assert len(concats) == len(model.out_indices) < len(ghost_modules)
    outputs = {node.output[0] for node in concats}
    consumers = [node for node in graph.node if outputs & set(node.input)]
    # Each joins an output: nothing inside the network consumes it but the
    # channel gather of the padded layout (or nothing: a graph output).
    assert all(node.op_type in ('Gather', 'Slice') for node in consumers), consumers
    assert layout_breaks(str(tmp_path / 'split.onnx'), block, '/backbone/') == []
    x = torch.randn(1, 3, 96, 96)
    session = ort.InferenceSession(str(tmp_path / 'split.onnx'),
                                   providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = model(x)
    assert_relative_close(expected, [torch.from_numpy(a) for a in
                                     session.run(None, {'input': x.numpy()})])
    model.deploy_split_halves = False
    export_backbone(model, tmp_path / 'concat.onnx', size=96)
    joined = channel_concats(onnx.load(str(tmp_path / 'concat.onnx')).graph)
    assert len(joined) == len(ghost_modules)
    # onnxruntime's layout pass: reorders only where the outputs leave the
    # blocked layout (the squeeze-excite gates are multiplied in it).
    assert reorders(tmp_path / 'split.onnx', tmp_path) == len(model.out_indices)


def channel_concats(graph):
    """Concats of feature maps (along channels), not of shapes."""
    return [node for node in graph.node if node.op_type == 'Concat' and
            any(attr.name == 'axis' and attr.i == 1 for attr in node.attribute)]


def runtime_block():
    """onnxruntime's NCHWc block on this processor: 16 with AVX-512, else 8."""
    return 16 if 'avx512f' in processor_name() else 8


def test_split_halves_setting_is_checked():
    for bad in (1, 'yes'):
        with pytest.raises(TypeError, match=r'deploy_split_halves must be None .*'
                           + re.escape(f'but got {bad!r}')):
            GhostNet(deploy_split_halves=bad)


def reorders(path, folder):
    """ReorderInput/ReorderOutput nodes onnxruntime puts into its optimised graph."""
    import onnx
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / 'optimized.onnx')
    ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    return sum(node.op_type.startswith('Reorder')
               for node in onnx.load(str(folder / 'optimized.onnx')).graph.node)


def test_unpadded_deploy_checkpoint_is_refused_by_the_padded_form_with_the_way_out(tmp_path):
    from ghostnet_mmdet.utils.safe_load import CheckpointMismatchError
    plain = GhostNet(out_indices=(4, 6)).eval()
    randomize_norm_stats(plain)
    plain.switch_to_deploy(channel_block=1)
    torch.save(plain.state_dict(), tmp_path / 'plain_deploy.pth')
    init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'plain_deploy.pth'))
    padded = GhostNet(out_indices=(4, 6), deploy=True, init_cfg=init_cfg)
    with pytest.raises(CheckpointMismatchError, match='loads with deploy_channel_block=1'):
        padded.init_weights()
    rebuilt = GhostNet(out_indices=(4, 6), deploy=True, deploy_channel_block=1, init_cfg=init_cfg)
    rebuilt.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for exp, act in zip(plain(x), rebuilt.eval()(x)):
            assert torch.equal(exp, act)


def test_split_convolutions_are_found_by_their_weights(tmp_path):
    """The split form's convolutions have unnamed weights (slices of the
    modules'); the INT8 quantizer's kinds still find every piece: the
    stem's two (one per half of its output), each squeeze-excite conv's
    two, and nothing else."""
    import onnx
    from ghostnet_mmdet.deploy.quantize import conv_kinds, onnx_conv_nodes
    model = GhostNet(out_indices=(4, 6)).eval()
    randomize_norm_stats(model)
    model.switch_to_deploy(channel_block=8)
    wrapper = export_backbone_onnx(model, str(tmp_path / 'split.onnx'), (64, 64))
    graph = onnx.load(str(tmp_path / 'split.onnx'))
    kinds = conv_kinds(wrapper)
    assert not onnx_conv_nodes(graph, kinds['stem'], prefix='')  # no names to go by
    stem = onnx_conv_nodes(graph, kinds['stem'], prefix='', root=wrapper)
    assert sorted(stem) == sorted(n.name for n in graph.graph.node
                                  if n.op_type == 'Conv' and n.input[0] == 'input')
    assert len(stem) == 2
    se = onnx_conv_nodes(graph, kinds['se'], prefix='', root=wrapper)
    assert kinds['se'] and len(se) == 2 * len(kinds['se'])
    everything = onnx_conv_nodes(graph, [p for paths in kinds.values() for p in paths],
                                 prefix='', root=wrapper)
    assert sorted(everything) == sorted(n.name for n in graph.graph.node if n.op_type == 'Conv')


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_openvino_broadcasts_the_gates_with_the_same_numbers(version, tmp_path):
    """OpenVINO's runner of the exported deploy form drops the squeeze-excite
    gates' Resize of a 1x1 map (the Multiply broadcasts it) and nothing
    else: V2's DFC gate, a real upsampling at this size (the smallest
    map is 4x4, pooled to 2x2), keeps its Resize. The compiled model
    gives the same feature maps as PyTorch; in an INT8 file, the same as
    with the Resize."""
    import openvino as ov
    from ghostnet_mmdet.deploy import compile_openvino
    from ghostnet_mmdet.deploy.openvino_detector import broadcast_gates
    from ghostnet_mmdet.models.layers.ghost_blocks import SqueezeExcite
    model = CLASSES[version](out_indices=(4, 6, 8)).eval()
    randomize_norm_stats(model)
    model.switch_to_deploy(channel_block=runtime_block())
    export_backbone(model, tmp_path / 'split.onnx', size=128)
    read = ov.Core().read_model(str(tmp_path / 'split.onnx'))

    def interpolates(ov_model):
        return sum(op.get_type_name() == 'Interpolate' for op in ov_model.get_ordered_ops())

    before = interpolates(read)
    gates = sum(isinstance(m, SqueezeExcite) for m in model.modules())
    # The split form gates each of the two halves with its own Resize.
    assert gates and broadcast_gates(read) == 2 * gates
    assert interpolates(read) == before - 2 * gates
    assert (interpolates(read) > 0) == (version == 'v2')
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected = model(x)

    def run(path, broadcast):
        compiled, _ = compile_openvino(path, 2, check_export=False, broadcast=broadcast)
        results = compiled.create_infer_request().infer({0: x.numpy()})
        return [torch.from_numpy(results[out]) for out in compiled.outputs]

    for broadcast in (True, False):
        assert_relative_close(expected, run(str(tmp_path / 'split.onnx'), broadcast))
    if version != 'v1':
        return  # V2's squeeze-excite gates are V1's: quantized once is enough
    # An INT8 file: the gates pass through quantize-dequantize on the way to
    # the Multiply; dropped all the same, with the same numbers.
    from ghostnet_mmdet.deploy.quantize import quantize_onnx
    int8 = str(tmp_path / 'int8.onnx')
    quantize_onnx(str(tmp_path / 'split.onnx'), int8,
                  [{'input': torch.randn(1, 3, 128, 128).numpy()} for _ in range(2)])
    assert broadcast_gates(ov.Core().read_model(int8)) == 2 * gates
    assert_relative_close(run(int8, False), run(int8, True))
