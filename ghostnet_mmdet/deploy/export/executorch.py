"""Export a detector to ExecuTorch, PyTorch's on-device runtime: the app
network (:mod:`.app_network`, as for ncnn: the detector up to every prior's
decoded box and scores) captured by ``torch.export``, lowered to the XNNPACK
delegate (x86-64 and ARM CPUs) and written as ``model.pte`` with
``meta.json`` beside it; the app's NumPy post-processing does the rest.

Float32 only: PT2E INT8 with XNNPACK's quantizer did not give a working
program for these detectors with ExecuTorch 1.5.1 (docs/en/mobile.md).
"""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..contract import EXECUTORCH_FORMAT, PROGRAM_FILE, ExportError
from .app_network import app_metadata, app_network, write_metadata

EXECUTORCH_PIN = 'executorch==1.5.1'


def _import_executorch():
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import \
            XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError:
        raise ExportError(f'ExecuTorch export needs {EXECUTORCH_PIN} (tools/setup_env.sh '
                          'installs it)') from None
    return XnnpackPartitioner, to_edge_transform_and_lower


def export_module_executorch(module: nn.Module, out_dir: str, input_size: Tuple[int, ...]) -> str:
    """``module`` (one ``1 x 3 x H x W`` input of ``input_size`` (height,
    width); tensors out) captured, lowered to XNNPACK and written to
    ``out_dir/model.pte``; returns that path."""
    partitioner, lower = _import_executorch()
    example = (torch.zeros(1, 3, *input_size), )
    with torch.no_grad():
        exported = torch.export.export(module.eval(), example)
        try:
            program = lower(exported, partitioner=[partitioner()]).to_executorch()
        except Exception as err:  # the lowering's own error types
            raise ExportError(f'ExecuTorch could not lower the network: '
                              f'{str(err).strip().splitlines()[0]}') from None
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, PROGRAM_FILE)
    with open(path, 'wb') as f:
        f.write(program.buffer)
    return path


def export_executorch(detector: nn.Module, out_dir: str, input_size: Tuple[int, int],
                      classes: Optional[Sequence[str]] = None,
                      metadata: Optional[dict] = None,
                      data_preprocessor: Optional[dict] = None) -> dict:
    """Export ``detector`` (prepared with ``prepare_for_export(fuse=True)``)
    to ``out_dir``: ``model.pte`` (XNNPACK) and ``meta.json`` (classes,
    input size, preprocessing, the app's post-processing settings).

    Returns:
        dict: What was written into ``meta.json``.
    """
    _import_executorch()
    app = app_network(detector, input_size)
    if getattr(app.detector, 'roi_head', None) is not None:
        raise ExportError('ExecuTorch export supports single-stage detectors; a two-stage '
                          "detector's RoI head runs as a second network: export it to ncnn")
    export_module_executorch(app, out_dir, input_size)
    names = list(range(len(app.output_names())))
    info = app_metadata(app, EXECUTORCH_FORMAT, 'executorch', names, classes,
                        data_preprocessor, weights='fp32', **(metadata or {}))
    write_metadata(out_dir, info)
    return info
