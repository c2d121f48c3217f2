"""Deployment: ONNX export with NMS in the graph, onnxruntime and OpenVINO
as backends of the tools, INT8 post-training quantization."""
from .compare import lost_detections, match_detections
from .export import (BackboneForExport, DetectorForExport, ExportError, default_input_size,
                     export_backbone_onnx, export_onnx, prepare_for_export)
from .openvino_detector import OpenVINODetector, compile_openvino
from .ort_detector import OnnxRuntimeDetector, load_session, session_options
from .postprocess import head_postprocess
from .runtime_detector import DeployError, RuntimeDetector, model_feeds, read_export_metadata

# --backend NAME of the tools -> the runner.
BACKENDS = {'onnxruntime': OnnxRuntimeDetector, 'openvino': OpenVINODetector}

__all__ = ['BACKENDS', 'BackboneForExport', 'DetectorForExport', 'DeployError', 'ExportError', 'OnnxRuntimeDetector',
           'OpenVINODetector', 'RuntimeDetector', 'compile_openvino', 'default_input_size',
           'export_backbone_onnx', 'export_onnx', 'head_postprocess', 'load_session',
           'lost_detections', 'match_detections', 'model_feeds', 'prepare_for_export',
           'read_export_metadata', 'session_options']
