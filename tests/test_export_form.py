"""The export form of a deployed GhostNet (ghostnet_mmdet.deploy.export.ghostnet_form):
ghost halves apart, channels padded to the runtimes' vector block, the
squeeze-excite gate in each runtime's form. The same numbers as the
network, and exported graphs that a CPU runtime keeps in its blocked layout
throughout."""
import re

import pytest
import torch

from ghostnet_mmdet.deploy import export_backbone_onnx, prepare_for_export
from ghostnet_mmdet.deploy.export.ghostnet_form import (ChannelLayout, GhostNetExportForm,
                                                 backbone_export_form, to_export_form)
from ghostnet_mmdet.deploy.export.layout import layout_breaks
from ghostnet_mmdet.models import GHOSTNET_VERSIONS, GhostNet
from ghostnet_mmdet.models.layers import SqueezeExcite
from ghostnet_mmdet.utils.benchmark import processor_name

from .backbone_utils import ours_from_timm, randomize_norm_stats, timm_model
from .detection_utils import SHAPES_CONFIG, build_config_detector

CLASSES = GHOSTNET_VERSIONS
TAPS = (2, 4, 6, 8, 9)


def assert_relative_close(expected, actual, rtol=1e-5):
    for exp, act in zip(expected, actual):
        assert exp.shape == act.shape
        scale = exp.abs().max().item()
        assert (exp - act).abs().max().item() <= rtol * scale + 1e-6, scale


def deployed(version='v1', width=1.0, out_indices=(4, 6, 8)):
    if version == 'v3':
        # V3's summed branches from a Kaiming start grow to 1e8 by stage 8;
        # timm's initialisation keeps them at the scale of trained weights.
        model = ours_from_timm('v3', width, timm_model('v3', width))
    else:
        model = CLASSES[version](widen_factor=width, out_indices=out_indices)
        randomize_norm_stats(model)
    model.eval()
    return model


@pytest.mark.parametrize('version', ['v1', 'v2', 'v3'])
@pytest.mark.parametrize('width', [0.5, 1.0, 1.3])
def test_export_form_equals_the_network(version, width):
    model = deployed(version, width, TAPS)
    x = torch.randn(1, 3, 96, 128)
    block = 16 if width == 1.0 else 8  # both blocks, without doubling the cases
    gate = 'broadcast' if width == 1.3 else 'resize'
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        folded = model(x)
        form = backbone_export_form(model, 'openvino' if gate == 'broadcast' else 'onnxruntime',
                                    channel_block=block)
        actual = form(x)
        again = model(x)
    assert isinstance(form, GhostNetExportForm) and form.gate == gate
    assert_relative_close(expected, folded)
    assert_relative_close(expected, actual)
    # Made from a copy: the deployed network is left as it was.
    assert all(torch.equal(a, b) for a, b in zip(folded, again))
    assert [a.shape[1] for a in actual] == model.out_channels
    convs = [m for m in form.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % block == 0 for c in convs)
    assert all(c.in_channels % block == 0 for c in convs if c.in_channels != 3)
    # Padding did pad: at these widths some halves are off the block.
    plain = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(c.out_channels for c in convs) > sum(c.out_channels for c in plain)


def test_what_is_not_a_deployed_ghostnet_is_left_or_refused():
    model = GhostNet(out_indices=(4, 6)).eval()
    # Not deployed: exported as it is (BatchNorm unfolded, the plain graph).
    assert backbone_export_form(model) is model
    with pytest.raises(ValueError, match='call switch_to_deploy.. first.*GhostNet in training form'):
        GhostNetExportForm(model)
    model.switch_to_deploy()
    for bad in (0, -8, 2.5, True, '8'):
        with pytest.raises(ValueError, match=r'channel_block must be a positive int .*'
                           + re.escape(f'but got {bad!r}')):
            backbone_export_form(model, channel_block=bad)
    with pytest.raises(ValueError, match=r"backend must be one of \('onnxruntime', 'openvino'\), "
                       r"but got 'tensorrt'"):
        backbone_export_form(model, 'tensorrt')
    with pytest.raises(ValueError, match=r"gate must be one of .*but got 'none'"):
        GhostNetExportForm(model, gate='none')
    # A form already made is taken as it is, for its own runtime only.
    form = backbone_export_form(model, 'openvino')
    assert backbone_export_form(form, 'openvino') is form
    with pytest.raises(ValueError, match="gates squeeze-excite with 'broadcast', the form of "
                       'another runtime than onnxruntime'):
        backbone_export_form(form, 'onnxruntime')


def test_detector_export_form_keeps_module_paths_and_leaves_the_detector():
    _, detector = build_config_detector(SHAPES_CONFIG, num_classes=5)
    prepare_for_export(detector, fuse=True)
    form = to_export_form(detector, 'openvino')
    assert isinstance(form.backbone, GhostNetExportForm) and form.backbone.gate == 'broadcast'
    assert isinstance(detector.backbone, GhostNet)
    assert form.neck is detector.neck and form.bbox_head is detector.bbox_head
    names = {name for name, _ in form.named_parameters()}
    assert 'backbone.stem.conv.weight' in names and 'neck.fpn_convs.0.conv.weight' in names


def test_channel_layout_of_a_ghost_module():
    # 40 channels: halves of 20, padded to 24 each; 39: the last cheap channel is padding.
    layout = ChannelLayout.ghost(40, 8)
    assert layout.total == 48 and layout.runs() == ((0, 20), (24, 44))
    odd = ChannelLayout.ghost(39, 8)
    assert odd.total == 48 and odd.runs() == ((0, 20), (24, 43))
    x = torch.arange(48.).reshape(1, 48, 1, 1)
    assert layout.to_natural(x).flatten().tolist() == list(range(20)) + list(range(24, 44))
    assert ChannelLayout.plain(40, 16).runs() == ((0, 40), )


def channel_concats(graph):
    """Concats of feature maps (along channels), not of shapes."""
    return [node for node in graph.node if node.op_type == 'Concat' and
            any(attr.name == 'axis' and attr.i == 1 for attr in node.attribute)]


def runtime_block():
    """onnxruntime's NCHWc block on this processor: 16 with AVX-512, else 8."""
    return 16 if 'avx512f' in processor_name() else 8


def reorders(path, folder):
    """ReorderInput/ReorderOutput nodes onnxruntime puts into its optimised graph."""
    import onnx
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / 'optimized.onnx')
    ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    return sum(node.op_type.startswith('Reorder')
               for node in onnx.load(str(folder / 'optimized.onnx')).graph.node)


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_exported_backbone_keeps_halves_apart_and_the_blocked_layout(version, tmp_path):
    """The onnxruntime form exported: no Concat inside the backbone, only one
    per output that joins its two halves; no convolution or Concat off the
    block; onnxruntime's optimised graph reorders only at the outputs; the
    same feature maps in onnxruntime. The unpadded form (block 1) has
    breaks and more reorders: the checks can fail."""
    import onnx
    import onnxruntime as ort
    model = deployed(version)
    model.switch_to_deploy()
    block = runtime_block()
    path = tmp_path / 'form.onnx'
    export_backbone_onnx(model, str(path), (96, 96), channel_block=block)
    graph = onnx.load(str(path)).graph
    concats = channel_concats(graph)
    assert len(concats) == len(model.out_indices)
    outputs = {node.output[0] for node in concats}
    consumers = [node for node in graph.node if outputs & set(node.input)]
    # Each joins an output: nothing inside the network consumes it but the
    # channel gather of the padded layout (or nothing: a graph output).
    assert all(node.op_type in ('Gather', 'Slice') for node in consumers), consumers
    assert layout_breaks(str(path), block, '/backbone/') == []
    x = torch.randn(1, 3, 96, 96)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = model(x)
    assert_relative_close(expected, [torch.from_numpy(a) for a in
                                     session.run(None, {'input': x.numpy()})])
    # onnxruntime's layout pass: reorders only where the outputs leave the
    # blocked layout (the squeeze-excite gates are multiplied in it).
    assert reorders(path, tmp_path) == len(model.out_indices)
    export_backbone_onnx(model, str(tmp_path / 'unpadded.onnx'), (96, 96), channel_block=1)
    assert any('Conv' in b for b in layout_breaks(str(tmp_path / 'unpadded.onnx'), 8,
                                                   '/backbone/'))
    assert reorders(tmp_path / 'unpadded.onnx', tmp_path) > len(model.out_indices)


def test_split_convolutions_are_found_by_their_weights(tmp_path):
    """The split form's convolutions have unnamed weights (slices of the
    padded modules'); the INT8 quantizer's kinds still find every piece: the
    stem's two (one per half of its output), each squeeze-excite conv's
    two, and nothing else."""
    import onnx
    from ghostnet_mmdet.deploy.quantize import conv_kinds, onnx_conv_nodes
    model = deployed(out_indices=(4, 6))
    model.switch_to_deploy()
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
def test_each_runtime_gets_its_gate_with_the_same_numbers(version, tmp_path):
    """onnxruntime's form gates each half with a Resize of the 1x1 gate;
    OpenVINO's multiplies by the 1x1 gate (broadcast) and has no such
    Resize: V2's DFC gate, a real upsampling at this size (the smallest
    map is 4x4, pooled to 2x2), keeps its Resize in both. Both files give
    the network's feature maps in OpenVINO."""
    import onnx
    from ghostnet_mmdet.deploy.backends.openvino import compile_openvino
    model = deployed(version)
    model.switch_to_deploy()
    gates = sum(isinstance(m, SqueezeExcite) for m in model.modules())
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected = model(x)
    resizes = {}
    for backend in ('onnxruntime', 'openvino'):
        path = str(tmp_path / f'{backend}.onnx')
        export_backbone_onnx(model, path, (128, 128), backend=backend,
                             channel_block=runtime_block())
        resizes[backend] = sum(n.op_type == 'Resize' for n in onnx.load(path).graph.node)
        compiled, _ = compile_openvino(path, 2, check_export=False)
        results = compiled.create_infer_request().infer({0: x.numpy()})
        assert_relative_close(expected, [torch.from_numpy(results[out])
                                         for out in compiled.outputs])
    # The split form gates each of the two halves.
    assert gates and resizes['onnxruntime'] - resizes['openvino'] == 2 * gates
    assert (resizes['openvino'] > 0) == (version == 'v2')
