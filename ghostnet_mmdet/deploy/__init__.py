"""Deployment: ONNX export with NMS in the graph, and onnxruntime as a
backend of the tools."""
from .compare import match_detections
from .export import DetectorForExport, ExportError, export_onnx, prepare_for_export
from .ort_detector import DeployError, OnnxRuntimeDetector, load_session

__all__ = ['DetectorForExport', 'DeployError', 'ExportError', 'OnnxRuntimeDetector',
           'export_onnx', 'load_session', 'match_detections', 'prepare_for_export']
