"""onnxruntime (CPU execution provider): runs the ONNX files of
``pytorch2onnx.py`` and ``quantize.py``."""
from typing import Dict, Optional, Sequence

from ..contract import (DeployError, check_io_names, check_model_file, first_line,
                        read_export_metadata)

FILE_KIND = 'onnx'


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
    check_io_names(onnx_file, [i.name for i in session.get_inputs()],
                   [o.name for o in session.get_outputs()], meta)
    return session, meta


class Model:
    """An ONNX file loaded into onnxruntime: ``model(feeds)`` runs it on the
    graph inputs it is given (name -> array; names the file does not take
    are left out) and returns its outputs in order."""

    def __init__(self, path: str, num_threads: Optional[int] = None, *,
                 optimization: str = 'all', disabled_optimizers: Sequence[str] = (),
                 check_export: bool = True) -> None:
        self.session, self.meta = load_session(path, num_threads, optimization, check_export,
                                               disabled_optimizers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, feeds: Dict):
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})
