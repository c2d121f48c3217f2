"""Deployment, in one direction: :mod:`.export` writes the files (ONNX with
NMS in the graph; ncnn and ExecuTorch app folders), :mod:`.contract` says
what they hold, :mod:`.backends` (one module per runtime) run them, and the
runtime detectors (:mod:`.runtime_detector`) put a runtime behind the
config's data preprocessor for MMDetection's tools; :mod:`.app_postprocess`
is an app's NumPy post-processing, :mod:`.quantize` INT8 for OpenVINO and
onnxruntime."""
from .backends import file_kind, load_model, runtime_call
from .compare import lost_detections, match_detections
from .contract import DeployError, ExportError, model_feeds, read_export_metadata
from .export import (BackboneForExport, DetectorForExport, default_input_size,
                     export_backbone_onnx, export_executorch, export_ncnn, export_onnx,
                     head_postprocess, prepare_for_export)
from .runtime_detector import (RUNTIMES, ExecuTorchDetector, NcnnDetector, OnnxRuntimeDetector,
                               OpenVINODetector, RuntimeDetector)

# The runtimes that run ONNX files (export_onnx, quantize) -> their detector.
BACKENDS = {name: cls for name, cls in RUNTIMES.items() if file_kind(name) == 'onnx'}

__all__ = ['BACKENDS', 'RUNTIMES', 'BackboneForExport', 'DetectorForExport', 'DeployError',
           'ExecuTorchDetector', 'ExportError', 'NcnnDetector', 'OnnxRuntimeDetector',
           'OpenVINODetector', 'RuntimeDetector', 'default_input_size', 'export_backbone_onnx',
           'export_executorch', 'export_ncnn', 'export_onnx', 'head_postprocess', 'load_model',
           'lost_detections', 'match_detections', 'model_feeds', 'prepare_for_export',
           'read_export_metadata', 'runtime_call']
