"""Deployment: ONNX export with NMS in the graph, onnxruntime and OpenVINO
as backends of the tools, INT8 post-training quantization; ncnn (through
pnnx) for phones, with the app's post-processing in NumPy."""
from .compare import lost_detections, match_detections
from .export import (BackboneForExport, DetectorForExport, ExportError, default_input_size,
                     export_backbone_onnx, export_onnx, prepare_for_export)
from .ncnn_detector import NcnnDetector
from .ncnn_export import export_ncnn
from .openvino_detector import OpenVINODetector, compile_openvino
from .ort_detector import OnnxRuntimeDetector, load_session, session_options
from .postprocess import head_postprocess
from .runtime_detector import (DeployError, RuntimeDetector, model_feeds, read_export_metadata,
                               runtime_call)

# The runtimes that run the exported ONNX file -> the runner.
BACKENDS = {'onnxruntime': OnnxRuntimeDetector, 'openvino': OpenVINODetector}
# --backend NAME of tools/test.py, demo.py and the benchmark -> the runner
# (ncnn runs the folder that pytorch2ncnn.py writes).
RUNTIMES = {**BACKENDS, 'ncnn': NcnnDetector}

__all__ = ['BACKENDS', 'RUNTIMES', 'NcnnDetector', 'export_ncnn', 'BackboneForExport', 'DetectorForExport', 'DeployError', 'ExportError', 'OnnxRuntimeDetector',
           'OpenVINODetector', 'RuntimeDetector', 'compile_openvino', 'default_input_size',
           'export_backbone_onnx', 'export_onnx', 'head_postprocess', 'load_session',
           'lost_detections', 'match_detections', 'model_feeds', 'prepare_for_export',
           'read_export_metadata', 'runtime_call', 'session_options']
