"""OpenVINO as a backend of MMDetection's tools: the exported ONNX file,
read by OpenVINO's ONNX front end and compiled for the CPU plugin.

The ONNX file is the artefact for both runtimes: it carries the export
metadata (classes, input size, post-processing) that the tools check, and
OpenVINO reads it, ``NonMaxSuppression`` included, in well under a second
for these detectors; an IR (``.xml``/``.bin``) would only save that read.
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmdet.registry import MODELS

from .runtime_detector import (DeployError, RuntimeDetector, check_io_names, check_model_file,
                               first_line, input_names, read_export_metadata)

HINTS = ('LATENCY', 'THROUGHPUT')
# Element-wise binary ops that broadcast their inputs numpy-style.
ELEMENTWISE = ('Multiply', 'Add', 'Subtract', 'Divide')


def broadcast_gates(model) -> int:
    """Drops, in an OpenVINO ``model`` read from our ONNX export, every
    nearest-neighbour ``Interpolate`` of a 1x1 map that only feeds
    numpy-broadcasting element-wise ops with a map of the Interpolate's
    output shape: those broadcast the 1x1 map themselves, which is the same
    numbers. An INT8 file's quantize-dequantize of the gate on the way
    (``FakeQuantize``, ``Convert``, and element-wise ops with per-channel or
    per-tensor constants) is let through: each treats every pixel alike, so
    it gives the same values before the upsampling as after. The
    squeeze-excite gates of the GhostNet family are exported that way
    (``Resize``) because onnxruntime's blocked-layout pass takes a Resize
    and not a broadcast Mul; OpenVINO's CPU plugin runs the Interpolate in
    plain layout with a reorder after it and fuses a broadcast Multiply
    instead. Returns how many were dropped; ``model`` is changed in place.
    """
    dropped = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != 'Interpolate' or op.get_attributes().get('mode') != 'nearest':
            continue
        source, shape = op.input_value(0), op.get_output_partial_shape(0)
        in_shape = source.get_partial_shape()
        if (not in_shape.is_static or not shape.is_static or len(in_shape) != 4
                or list(in_shape)[2:] != [1, 1] or list(in_shape)[:2] != list(shape)[:2]):
            continue
        if not _all_broadcast(op.output(0), shape):
            continue
        op.output(0).replace(source)
        dropped += 1
    if dropped:
        model.validate_nodes_and_infer_types()
    return dropped


def _all_broadcast(output, shape) -> bool:
    """Whether every path from ``output`` ends in a broadcasting element-wise
    op with a ``shape`` map, through ops that treat every pixel alike."""
    targets = list(output.get_target_inputs())
    if not targets:
        return False
    for target in targets:
        node, kind = target.get_node(), target.get_node().get_type_name()
        if kind in ELEMENTWISE:
            if node.get_attributes().get('auto_broadcast') != 'numpy' or \
                    node.get_input_size() != 2:
                return False
            other = node.input_value(1 - target.get_index()).get_partial_shape()
            if other.is_static and other == shape:
                continue  # the map the gate is broadcast against
            if not (_no_pixels(other) and _all_broadcast(node.output(0), shape)):
                return False
        elif kind == 'FakeQuantize':
            limits = [node.input_value(i).get_partial_shape()
                      for i in range(1, node.get_input_size())]
            if target.get_index() != 0 or not all(map(_no_pixels, limits)) or \
                    not _all_broadcast(node.output(0), shape):
                return False
        elif kind != 'Convert' or not _all_broadcast(node.output(0), shape):
            return False
    return True


def _no_pixels(shape) -> bool:
    """A static shape of one value per tensor or per channel (no height or
    width beyond 1)."""
    return shape.is_static and len(shape) <= 4 and \
        (len(shape) < 3 or all(dim == 1 for dim in list(shape)[2:]))


def compile_openvino(onnx_file: str, num_threads: Optional[int] = None, hint: str = 'LATENCY',
                     device: str = 'CPU', check_export: bool = True,
                     broadcast: bool = True):
    """``onnx_file`` compiled by OpenVINO for ``device`` with a performance
    ``hint`` (``LATENCY``: one stream, batch 1 fastest) and ``num_threads``
    inference threads, in float32 (``INFERENCE_PRECISION_HINT``: CPUs with
    bf16 or AMX units would otherwise run float32 models in bf16). INT8
    (QDQ) models run their quantized convolutions in INT8 all the same.
    With ``broadcast`` (default), the squeeze-excite gates' Resize nodes
    are dropped for broadcasting (:func:`broadcast_gates`: same numbers,
    fewer operators and reorders in OpenVINO). Returns the compiled model
    and the export metadata (with
    ``check_export=False``, any ONNX file: no metadata, any inputs and
    outputs)."""
    import openvino as ov
    check_model_file(onnx_file)
    if hint not in HINTS:
        raise DeployError(f'OpenVINO performance hint must be one of {HINTS}, got {hint!r}')
    core = ov.Core()
    try:
        model = core.read_model(onnx_file)
    except Exception as err:  # OpenVINO raises RuntimeError with the front end's words
        raise DeployError(f'{onnx_file} is not an ONNX model OpenVINO can load: '
                          f'{first_line(err)}') from None
    meta = {}
    if check_export:
        meta = read_export_metadata(onnx_file)
        check_io_names(onnx_file, input_names(model),
                       [port.get_any_name() for port in model.outputs], meta)
    if broadcast:
        broadcast_gates(model)
    config = {'PERFORMANCE_HINT': hint, 'INFERENCE_PRECISION_HINT': 'f32'}
    if num_threads:
        config['INFERENCE_NUM_THREADS'] = int(num_threads)
    try:
        compiled = core.compile_model(model, device, config)
    except Exception as err:
        raise DeployError(f'OpenVINO cannot compile {onnx_file} for {device}: '
                          f'{first_line(err)}') from None
    return compiled, meta


@MODELS.register_module()
class OpenVINODetector(RuntimeDetector):
    """An exported detector run by OpenVINO's CPU plugin (see
    :class:`~ghostnet_mmdet.deploy.runtime_detector.RuntimeDetector` for
    the arguments; ``hint`` is OpenVINO's performance hint)."""
    backend = 'openvino'

    def __init__(self, onnx_file: str, data_preprocessor: dict, classes=None,
                 num_threads: Optional[int] = None, hint: str = 'LATENCY') -> None:
        self.hint = hint
        super().__init__(onnx_file, data_preprocessor, classes=classes, num_threads=num_threads)

    def _load(self, onnx_file: str, num_threads: Optional[int]) -> Tuple[Dict, List[str]]:
        self.compiled, meta = compile_openvino(onnx_file, num_threads, self.hint)
        self.request = self.compiled.create_infer_request()
        return meta, input_names(self.compiled)

    def infer(self, feeds: Dict[str, np.ndarray]):
        results = self.request.infer(feeds)
        named = {port.get_any_name(): value for port, value in results.items()}
        return named['dets'], named['labels']
