"""onnxruntime as a backend of MMDetection's tools (CPU execution provider)."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmdet.registry import MODELS

from .runtime_detector import (DeployError, RuntimeDetector, check_io_names, check_model_file,
                               first_line, input_names, read_export_metadata)


def session_options(num_threads: Optional[int] = None, optimization: str = 'all'):
    """onnxruntime session options: ``num_threads`` intra-op threads (one
    inter-op thread: a detector's graph is a chain), graph optimisation
    level ``'all'`` (layout transforms included; measured fastest here),
    ``'extended'``, ``'basic'`` or ``'none'``."""
    import onnxruntime as ort
    levels = dict(all=ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  extended=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  basic=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  none=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if optimization not in levels:
        raise DeployError(f'onnxruntime optimization must be one of {list(levels)}, '
                          f'got {optimization!r}')
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[optimization]
    return options


def load_session(onnx_file: str, num_threads: Optional[int] = None, optimization: str = 'all',
                 check_export: bool = True, disabled_optimizers: Sequence[str] = ()):
    """An onnxruntime CPU session for ``onnx_file``, and the metadata the
    exporter wrote into it (with ``check_export=False``, any ONNX file: no
    metadata, any inputs and outputs). ``disabled_optimizers`` names graph
    transformers to leave out (e.g. ``NchwcTransformer``, its layout pass)."""
    import onnxruntime as ort
    check_model_file(onnx_file)
    try:
        session = ort.InferenceSession(onnx_file, session_options(num_threads, optimization),
                                       providers=['CPUExecutionProvider'],
                                       disabled_optimizers=list(disabled_optimizers) or None)
    except Exception as err:  # onnxruntime's own error types are not importable by name
        raise DeployError(f'{onnx_file} is not an ONNX model onnxruntime can load: '
                          f'{first_line(err)}') from None
    if not check_export:
        return session, {}
    meta = read_export_metadata(onnx_file)
    check_io_names(onnx_file, input_names(session), [o.name for o in session.get_outputs()],
                   meta)
    return session, meta



@MODELS.register_module()
class OnnxRuntimeDetector(RuntimeDetector):
    """An exported detector run by onnxruntime on the CPU (see
    :class:`~ghostnet_mmdet.deploy.runtime_detector.RuntimeDetector` for
    the arguments)."""
    backend = 'onnxruntime'

    def _load(self, onnx_file: str, num_threads: Optional[int]) -> Tuple[Dict, List[str]]:
        self.session, meta = load_session(onnx_file, num_threads)
        return meta, input_names(self.session)

    def infer(self, feeds: Dict[str, np.ndarray]):
        return self.session.run(None, feeds)
