"""The runtimes, one module each: how it loads a file, runs it, and its
options; no import of the export side, and no torch where the runtime does
not need it (ExecuTorch's Python runtime does).

Each module has a ``Model(path, num_threads=None, **options)`` with the
file's export metadata (``meta``) and ``FILE_KIND``: ``'onnx'`` (the
detector with its post-processing: ``model(feeds)`` gives ``dets`` and
``labels``) or ``'app'`` (an export folder whose network stops before the
post-processing: ``model(image)`` gives the network's outputs, which
:mod:`ghostnet_mmdet.deploy.app_postprocess` turns into detections).

Adding a runtime: a module here, a line in :data:`BACKENDS`, and an
exporter under :mod:`ghostnet_mmdet.deploy.export` if it needs its own
format.
"""
import importlib
from types import ModuleType
from typing import Callable, Optional

from ..contract import DeployError

# --backend NAME -> the module that runs it.
BACKENDS = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino', 'ncnn': 'ncnn',
            'executorch': 'executorch'}


def backend_module(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise DeployError(f'backend must be one of {tuple(BACKENDS)}, got {name!r}')
    return importlib.import_module(f'{__name__}.{BACKENDS[name]}')


def load_model(path: str, backend: str, num_threads: Optional[int] = None, **options):
    """``path`` loaded by ``backend``'s ``Model`` (``options``: the
    runtime's own, e.g. onnxruntime's ``optimization``, OpenVINO's
    ``hint``)."""
    return backend_module(backend).Model(path, num_threads, **options)


def runtime_call(path: str, backend: str, num_threads: Optional[int] = None,
                 **options) -> Callable:
    """A function that runs ``path`` once in ``backend`` on what its
    ``Model`` takes (the graph inputs, name -> array, for ONNX files; one
    image for app folders): what the speed checks and benchmarks time."""
    return load_model(path, backend, num_threads, **options)


def file_kind(backend: str) -> str:
    return backend_module(backend).FILE_KIND


__all__ = ['BACKENDS', 'backend_module', 'file_kind', 'load_model', 'runtime_call']
