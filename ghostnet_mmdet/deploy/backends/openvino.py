"""OpenVINO (CPU plugin): the ONNX files of ``pytorch2onnx.py`` and
``quantize.py``, read by OpenVINO's ONNX front end and compiled.

The ONNX file is the artefact (exported for OpenVINO: ``pytorch2onnx.py
--backend openvino``): it carries the export metadata (classes, input size,
post-processing, the runtime it was made for) that the tools check, and
OpenVINO reads it, ``NonMaxSuppression`` included, in well under a second
for these detectors; an IR (``.xml``/``.bin``) would only save that read.
"""
from typing import Dict, Optional

from ..contract import (OUTPUT_NAMES, DeployError, check_io_names, check_model_file,
                        first_line, read_export_metadata)

FILE_KIND = 'onnx'
HINTS = ('LATENCY', 'THROUGHPUT')


def _names(ports):
    return [port.get_any_name() for port in ports]


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
        check_io_names(onnx_file, _names(model.inputs), _names(model.outputs), meta)
    config = {'PERFORMANCE_HINT': hint, 'INFERENCE_PRECISION_HINT': 'f32'}
    if num_threads:
        config['INFERENCE_NUM_THREADS'] = int(num_threads)
    try:
        compiled = core.compile_model(model, device, config)
    except Exception as err:
        raise DeployError(f'OpenVINO cannot compile {onnx_file} for {device}: '
                          f'{first_line(err)}') from None
    return compiled, meta


class Model:
    """An ONNX file compiled by OpenVINO (``hint``: its performance hint):
    ``model(feeds)`` runs it on the graph inputs it is given and returns
    ``dets`` and ``labels`` (every output, in order, for other files)."""

    def __init__(self, path: str, num_threads: Optional[int] = None, *, hint: str = 'LATENCY',
                 check_export: bool = True) -> None:
        self.compiled, self.meta = compile_openvino(path, num_threads, hint,
                                                    check_export=check_export)
        self.request = self.compiled.create_infer_request()
        self.input_names = _names(self.compiled.inputs)
        self.output_names = _names(self.compiled.outputs)

    def __call__(self, feeds: Dict):
        results = self.request.infer({k: v for k, v in feeds.items() if k in self.input_names})
        named = {port.get_any_name(): value for port, value in results.items()}
        names = OUTPUT_NAMES if self.meta else self.output_names
        return [named[name] for name in names]
