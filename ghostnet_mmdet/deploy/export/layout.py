"""Where an exported graph forces a CPU runtime out of its blocked channel
layout.

onnxruntime (its NCHWc pass) and OpenVINO's CPU plugin run convolutions
on tensors whose channels are stored in blocks of 8 (AVX2) or 16
(AVX-512). A tensor stays blocked only where its channel count is a
multiple of the block, and through a Concat only where every input is;
elsewhere the runtime reorders it to plain NCHW and back. This module
reads an ONNX graph and lists those places, so that tests and benchmarks
can say whether a deploy form is layout-clean.
"""
from typing import List, Optional

# Convolutions whose input has fewer channels than this take the image (or
# another thin tensor) as it is: runtimes have a kernel for that.
THIN_INPUT = 8


def _channels(value_info) -> Optional[int]:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[1].HasField('dim_value'):
        return None
    return dims[1].dim_value


def layout_breaks(model, block: int, name_prefix: str = '') -> List[str]:
    """Layout breaks of ``model`` (an ``onnx.ModelProto`` or a path) for
    ``block`` channels: convolutions with input or output channels off the
    block (inputs under :data:`THIN_INPUT` channels excepted) and Concats
    of 4-D tensors with an input off the block. Only nodes whose name
    starts with ``name_prefix`` are looked at (the TorchScript exporter
    names nodes by module path, e.g. ``/detector/backbone/``).

    Returns:
        list[str]: One line per break, naming the node and its channels.
    """
    import onnx
    if isinstance(model, str):
        model = onnx.load(model)
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    shapes = {info.name: info for info in list(graph.value_info) + list(graph.input) +
              list(graph.output)}
    weights = {init.name: init for init in graph.initializer}
    breaks = []
    for node in graph.node:
        if not node.name.startswith(name_prefix):
            continue
        if node.op_type == 'Conv' and node.input[1] in weights:
            dims = weights[node.input[1]].dims
            groups = next((attr.i for attr in node.attribute if attr.name == 'group'), 1)
            out_channels, in_channels = dims[0], dims[1] * groups
            if out_channels % block or (in_channels >= THIN_INPUT and in_channels % block):
                breaks.append(f'{node.name}: Conv {in_channels} -> {out_channels} channels '
                              f'(groups {groups})')
        elif node.op_type == 'Concat':
            counts = [_channels(shapes[name]) if name in shapes else None for name in node.input]
            axis = next((attr.i for attr in node.attribute if attr.name == 'axis'), 0)
            if axis == 1 and all(c is not None for c in counts) and any(c % block for c in counts):
                breaks.append(f'{node.name}: Concat of {counts} channels')
    return breaks
