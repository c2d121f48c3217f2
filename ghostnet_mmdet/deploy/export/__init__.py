"""The export side: a trained MMDetection detector into the files the
runtimes load (:mod:`ghostnet_mmdet.deploy.contract` says what they hold).

- :mod:`.heads`: one class per head family (its in-graph post-processing,
  where its network stops for app runtimes, the settings they need);
- :mod:`.onnx`: the ONNX file with post-processing in the graph
  (onnxruntime, OpenVINO), in the runtime's export form (:mod:`.ghostnet_form`);
- :mod:`.app_network`: the network app runtimes run, and :mod:`.ncnn`,
  :mod:`.executorch`, the formats of ncnn and ExecuTorch.
"""
from .app_network import NetworkForApp, app_network
from .executorch import export_executorch
from .heads import head_postprocess
from .ncnn import export_ncnn
from .onnx import (BackboneForExport, DetectorForExport, default_input_size, export_backbone_onnx,
                   export_onnx, prepare_for_export)

__all__ = ['BackboneForExport', 'DetectorForExport', 'NetworkForApp', 'app_network',
           'default_input_size', 'export_backbone_onnx', 'export_executorch', 'export_ncnn',
           'export_onnx', 'head_postprocess', 'prepare_for_export']
