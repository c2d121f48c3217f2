"""INT8 post-training quantization of an exported detector for one
runtime, calibrated on training images of the config's own dataset, written
as QDQ ONNX (QuantizeLinear/DequantizeLinear pairs around the INT8
operations).

Each runtime fuses other quantizer patterns, and runs the other's file
slower than float32, so the file is made for one (:data:`ENGINES`):

- ``openvino``: OpenVINO's NNCF places the quantizers where OpenVINO's CPU
  plugin fuses them (FakeQuantize before convolutions, residual adds and
  concatenations), with bias correction;
- ``onnxruntime``: onnxruntime's static quantization, u8 activations and s8
  weights (the pair its x86 kernels run fastest, with VNNI in one
  instruction), in the QDQ patterns its graph optimiser fuses into
  ``QLinearConv``; NNCF's extra quantize-dequantize pairs around adds and
  gates are what made its file slower than float32 in onnxruntime.

Weights are int8 per output channel; the layers that usually cost accuracy
can be kept in float32 by kind (:data:`KEEP_FP32_KINDS`); the
post-processing (box decoding, NMS) always is.
"""
import copy
import json
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from .backends import runtime_call
from .contract import INPUT_NAMES, INT8_ENGINES, DeployError, model_feeds
from .runtime_detector import pad_to_input

# Kinds of convolution that quantize() can keep in float32.
KEEP_FP32_KINDS = ('stem', 'depthwise', 'se', 'attention', 'head_output', 'neck_head_depthwise')
# The default: measured on GhostShapes (docs/en/deployment.md), the first
# conv, the squeeze-excite and DFC gates, the head's predictors and the
# depthwise convs of the neck and head (LiteGFL's: OpenVINO INT8 bbox mAP
# 0.647 with them in INT8, 0.699 without, float32 0.714; and faster) stay
# float32.
DEFAULT_KEEP_FP32 = ('stem', 'se', 'attention', 'head_output', 'neck_head_depthwise')


def conv_kinds(detector: nn.Module) -> Dict[str, List[str]]:
    """Module paths of the detector's convolutions, by kind: ``stem`` (the
    backbone's first conv), ``depthwise``, ``se`` (squeeze-excite),
    ``attention`` (GhostNetV2's DFC), ``head_output`` (the bbox head's
    predictors: plain convs outside its ConvModules), ``other``."""
    kinds = {kind: [] for kind in KEEP_FP32_KINDS + ('other', )}
    modules = dict(detector.named_modules())
    first_conv = next((name for name, module in detector.named_modules()
                       if isinstance(module, nn.Conv2d) and name.startswith('backbone.')), None)
    for name, module in modules.items():
        if not isinstance(module, nn.Conv2d):
            continue
        parent = modules.get(name.rpartition('.')[0])
        if name == first_conv:
            kind = 'stem'
        elif module.groups > 1 and module.groups == module.in_channels:
            kind = 'depthwise'
        elif '.se.' in name:
            kind = 'se'
        elif '.short_conv.' in name:
            kind = 'attention'
        elif name.startswith('bbox_head.') and not isinstance(parent, ConvModule):
            kind = 'head_output'
        else:
            kind = 'other'
        kinds[kind].append(name)
    kinds['neck_head_depthwise'] = [name for name in kinds['depthwise']
                                    if not name.startswith('backbone.')]
    return kinds


def onnx_conv_nodes(model, module_paths: Iterable[str], prefix: str = 'detector.',
                    root: Optional[nn.Module] = None) -> List[str]:
    """Names of the ONNX Conv nodes of these module paths, found by their
    weights: the TorchScript exporter names a parameter by its path in the
    exported wrapper (``detector.`` + the detector's path + ``.weight``),
    and a head conv shared by the levels gives one node per level.

    With ``root`` (the exported detector, or whatever ``module_paths`` are
    relative to), also the convolutions whose weights are unnamed slices of
    these modules' weights: the GhostNet export form with the ghost halves
    apart (:mod:`ghostnet_mmdet.deploy.export.ghostnet_form`) runs every
    convolution as pieces whose weights the exporter folds into anonymous
    constants; they are found by their values (give the export form as
    ``root``: its weights are padded)."""
    paths = list(module_paths)
    wanted = {prefix + path + '.weight' for path in paths}
    found = [node.name for node in model.graph.node
             if node.op_type == 'Conv' and len(node.input) > 1 and node.input[1] in wanted]
    if root is None or not paths:
        return found
    from onnx import numpy_helper
    named = {prefix + name for name in root.state_dict()}
    sources = {node.output[0]: node.input[0] for node in model.graph.node
               if node.op_type == 'Identity'}
    constants = {init.name: init for init in model.graph.initializer}
    weights = [root.get_submodule(path).weight.detach().cpu().numpy() for path in paths]
    for node in model.graph.node:
        if node.op_type != 'Conv' or len(node.input) < 2:
            continue
        name = node.input[1]
        while name in sources:
            name = sources[name]
        if name in named or name not in constants:
            continue
        piece = numpy_helper.to_array(constants[name])
        if any(_is_slice_of(piece, weight) for weight in weights):
            found.append(node.name)
    return found


def _is_slice_of(piece: np.ndarray, weight: np.ndarray) -> bool:
    """Whether ``piece`` is a block of whole output and input channels of
    ``weight`` at a multiple of its own size (as the split pieces are)."""
    if piece.shape[2:] != weight.shape[2:] or weight.shape[0] % piece.shape[0] or \
            weight.shape[1] % piece.shape[1]:
        return False
    rows, cols = piece.shape[:2]
    return any(np.array_equal(weight[r:r + rows, c:c + cols], piece)
               for r in range(0, weight.shape[0], rows) for c in range(0, weight.shape[1], cols))


def calibration_inputs(cfg, num_images: int, input_size, seed: int = 0) -> List[Dict]:
    """``num_images`` training images of the config's dataset (spread over
    it by a seeded draw), through the test pipeline and the data
    preprocessor, padded to the exported size: the graph's inputs
    (:func:`~ghostnet_mmdet.deploy.contract.model_feeds`), a float32
    ``1x3xHxW`` ``input`` and its ``img_shape``."""
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import get_test_pipeline_cfg
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while 'dataset' in dataset_cfg:  # RepeatDataset, MultiImageMixDataset ...
        dataset_cfg = dataset_cfg['dataset']
    dataset_cfg['pipeline'] = get_test_pipeline_cfg(cfg)
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise DeployError('the training dataset of the config is empty: nothing to calibrate on')
    if num_images < 1:
        raise DeployError(f'--calib-images must be at least 1, got {num_images}')
    count = min(num_images, len(dataset))
    indices = np.random.default_rng(seed).choice(len(dataset), count, replace=False)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = []
    with torch.no_grad():
        for index in sorted(indices.tolist()):
            item = dataset[index]
            data = preprocessor(dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
                                False)
            batch = pad_to_input(data['inputs'], input_size, getattr(preprocessor, 'pad_value', 0))
            inputs.append(model_feeds(INPUT_NAMES, batch.numpy(),
                                      [item['data_samples'].metainfo['img_shape'][:2]]))
    return inputs


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of the
    graph's inputs."""

    def __init__(self, inputs: Sequence[Dict]) -> None:
        self.inputs = iter(inputs)

    def get_next(self):
        return next(self.inputs, None)


# The runtime an INT8 file is made for -> who places its quantizers.
ENGINES = INT8_ENGINES
# Nodes of the exported graph outside these scopes are the post-processing.
NETWORK_SCOPES = ('/backbone/', '/neck/', '/bbox_head/')


def _quantize_with_nncf(fp32, inputs, keep_fp32_nodes, calibration):
    import logging

    import nncf
    # NNCF logs a line for every node it leaves alone; its progress bars stay.
    logging.getLogger('nncf').setLevel(logging.WARNING)
    if calibration != 'minmax':
        raise DeployError(f'INT8 for openvino (NNCF) calibrates with its own statistics (minmax '
                          f'and bias correction), not {calibration!r}')
    # NNCF sees the network alone (the post-processing stays float32 in any
    # case): its pattern matching, which grows with the graph, and its
    # calibration runs then skip box decoding and NMS.
    network, post_processing = _split_network(fp32)
    graph = network if network is not None else fp32
    names = {graph_input.name for graph_input in graph.graph.input}
    ignored = [node.name for node in graph.graph.node
               if not node.name.startswith(NETWORK_SCOPES)] + list(keep_fp32_nodes)
    quantized = nncf.quantize(
        graph, nncf.Dataset([{k: v for k, v in feeds.items() if k in names} for feeds in inputs]),
        subset_size=len(inputs), preset=nncf.QuantizationPreset.MIXED,
        ignored_scope=nncf.IgnoredScope(names=sorted(set(ignored)), validate=False))
    return quantized if network is None else _join(quantized, post_processing, fp32)


def _split_network(model):
    """``model`` (an exported detector) as its network (the nodes of
    :data:`NETWORK_SCOPES` and the constants they read, up to the tensors
    the post-processing reads) and the rest; ``(None, None)`` where the two
    do not part cleanly."""
    import onnx
    nodes = list(model.graph.node)
    producer = {out: index for index, node in enumerate(nodes) for out in node.output}
    inside = {index for index, node in enumerate(nodes) if node.name.startswith(NETWORK_SCOPES)}
    # The nodes outside the scopes that the network reads (the exporter's
    # Identity and Constant nodes), and theirs in turn.
    pending = list(inside)
    while pending:
        for name in nodes[pending.pop()].input:
            index = producer.get(name)
            if index is not None and index not in inside:
                if nodes[index].op_type not in ('Constant', 'Identity'):
                    return None, None  # the network reads the post-processing
                inside.add(index)
                pending.append(index)
    # Constants in the scopes that only the post-processing reads go with it.
    while True:
        read = {name for index in inside for name in nodes[index].input}
        unread = {index for index in inside if nodes[index].op_type in ('Constant', 'Identity')
                  and not set(nodes[index].output) & read}
        if not unread:
            break
        inside -= unread
    outside = {name for index, node in enumerate(nodes) if index not in inside
               for name in node.input} | {output.name for output in model.graph.output}
    boundary = [name for index in sorted(inside) for name in nodes[index].output
                if name in outside and nodes[index].op_type not in ('Constant', 'Identity')]
    types = {info.name: info for info in onnx.shape_inference.infer_shapes(model).graph.value_info}
    types.update({info.name: info for info in model.graph.output})
    if not boundary or any(name not in types for name in boundary):
        return None, None
    network_nodes = [nodes[index] for index in sorted(inside)]
    used = {name for node in network_nodes for name in node.input}
    network = onnx.helper.make_model(
        onnx.helper.make_graph(
            network_nodes, 'network', [i for i in model.graph.input if i.name in used],
            [types[name] for name in boundary],
            [init for init in model.graph.initializer if init.name in used]),
        opset_imports=model.opset_import, ir_version=model.ir_version)
    # The constants both parts read go with both.
    rest = [node for index, node in enumerate(nodes) if index not in inside or (
        node.op_type in ('Constant', 'Identity') and set(node.output) & outside)]
    return network, rest


def _join(network, post_processing, model):
    """The quantized ``network`` with ``model``'s post-processing nodes
    after it, as one graph with ``model``'s inputs and outputs."""
    import onnx
    in_network = {node.name for node in network.graph.node}
    nodes = list(network.graph.node) + [node for node in post_processing
                                        if node.name not in in_network]
    # (NNCF turns Constant nodes into initializers; where the post-processing
    # brought the node along, the node gives the tensor.)
    produced = {name for node in nodes for name in node.output}
    have = {init.name for init in network.graph.initializer}
    used = {name for node in nodes for name in node.input}
    initializers = [init for init in network.graph.initializer if init.name not in produced] + [
        init for init in model.graph.initializer if init.name in used and init.name not in have]
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    for entry in network.opset_import:
        opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    joined = onnx.helper.make_model(
        onnx.helper.make_graph(nodes, model.graph.name, model.graph.input, model.graph.output,
                               initializers),
        opset_imports=[onnx.helper.make_opsetid(domain, version)
                       for domain, version in opsets.items()],
        ir_version=model.ir_version)
    onnx.checker.check_model(joined)
    return joined


def _quantize_with_onnxruntime(fp32_file, out_file, inputs, keep_fp32_nodes, calibration,
                               reduce_range):
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    methods = dict(minmax=CalibrationMethod.MinMax, percentile=CalibrationMethod.Percentile,
                   entropy=CalibrationMethod.Entropy)
    if calibration not in methods:
        raise DeployError(f'calibration must be one of {list(methods)}, got {calibration!r}')
    quantize_static(fp32_file, out_file, _Reader(inputs), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=['Conv'], per_channel=True, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(keep_fp32_nodes), calibrate_method=methods[calibration],
                    calibration_providers=['CPUExecutionProvider'],
                    extra_options=dict(WeightSymmetric=True, ActivationSymmetric=False))


def quantize_onnx(fp32_file: str, out_file: str, inputs: Sequence[Dict],
                  keep_fp32_nodes: Sequence[str] = (), backend: str = 'openvino',
                  calibration: str = 'minmax', reduce_range: bool = False,
                  extra_metadata: Optional[dict] = None) -> dict:
    """Quantize ``fp32_file`` (an exported detector, in the export form for
    ``backend``) to INT8 QDQ for the runtime ``backend``, keeping
    ``keep_fp32_nodes`` and the post-processing in float32, calibrated on
    ``inputs`` (the graph's inputs, name to array); write ``out_file`` with
    the FP32 file's metadata plus a ``quantization`` record (which names
    ``backend``: the runners refuse the file elsewhere). Returns that
    record."""
    import onnx
    if backend not in ENGINES:
        raise DeployError(f'INT8 files are made for one of the runtimes {tuple(ENGINES)}, '
                          f'not {backend!r}')
    engine = ENGINES[backend]
    fp32 = onnx.load(fp32_file)
    # YOLOX and YOLOv3 graphs have no img_shape input (they do not clip).
    names = {graph_input.name for graph_input in fp32.graph.input}
    inputs = [{name: value for name, value in feeds.items() if name in names} for feeds in inputs]
    if engine == 'nncf':
        quantized = _quantize_with_nncf(fp32, inputs, keep_fp32_nodes, calibration)
    else:
        _quantize_with_onnxruntime(fp32_file, out_file, inputs, keep_fp32_nodes, calibration,
                                   reduce_range)
        quantized = onnx.load(out_file)
    producers = {output: node for node in quantized.graph.node for output in node.output}
    convs = [node for node in quantized.graph.node if node.op_type == 'Conv']
    int8 = sum(1 for node in convs if node.input[1] in producers
               and producers[node.input[1]].op_type == 'DequantizeLinear')
    record = dict(format='QDQ', backend=backend, engine=engine, weights='int8 per channel',
                  calibration=calibration, calibration_images=len(inputs),
                  reduce_range=reduce_range, int8_convs=int8, fp32_convs=len(convs) - int8,
                  **(extra_metadata or {}))
    del quantized.metadata_props[:]
    for entry in fp32.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    quantized.metadata_props.add(key='quantization', value=json.dumps(record))
    onnx.save(quantized, out_file)
    return record


def int8_speed_ratio(fp32_file: str, int8_file: str, backend: str, feeds: Dict,
                     rounds: int = 10, num_threads: Optional[int] = None,
                     pause: float = 0.05) -> float:
    """INT8 / float32 latency of two files in ``backend`` on this processor,
    for the graph inputs ``feeds``: the median of per-round ratios of
    interleaved runs (each round times both files, in a random order, after
    a pause), as the benchmarks measure."""
    from ..utils.benchmark import interleaved, ratio_median
    calls = {}
    for name, path in (('fp32', fp32_file), ('int8', int8_file)):
        run = runtime_call(path, backend, num_threads)
        calls[name] = lambda run=run: run(feeds)
    times = interleaved(calls, rounds, warmup=2, pause=pause)
    return ratio_median(times, 'int8', 'fp32')
