"""OpenVINO as a backend of MMDetection's tools: the exported ONNX file,
read by OpenVINO's ONNX front end and compiled for the CPU plugin.

The ONNX file is the artefact (exported for OpenVINO: ``pytorch2onnx.py
--backend openvino``): it carries the export metadata (classes, input size,
post-processing, the runtime it was made for) that the tools check, and
OpenVINO reads it, ``NonMaxSuppression`` included, in well under a second
for these detectors; an IR (``.xml``/``.bin``) would only save that read.
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmdet.registry import MODELS

from .runtime_detector import (DeployError, RuntimeDetector, check_io_names, check_model_file,
                               first_line, input_names, read_export_metadata)

HINTS = ('LATENCY', 'THROUGHPUT')


def compile_openvino(onnx_file: str, num_threads: Optional[int] = None, hint: str = 'LATENCY',
                     device: str = 'CPU', check_export: bool = True):
    """``onnx_file`` compiled by OpenVINO for ``device`` with a performance
    ``hint`` (``LATENCY``: one stream, batch 1 fastest) and ``num_threads``
    inference threads, in float32 (``INFERENCE_PRECISION_HINT``: CPUs with
    bf16 or AMX units would otherwise run float32 models in bf16). INT8
    (QDQ) models run their quantized convolutions in INT8 all the same.
    Returns the compiled model and the export metadata (with
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
