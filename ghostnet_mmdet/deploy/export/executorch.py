"""Export a detector to ExecuTorch, PyTorch's on-device runtime: the app
network (:mod:`.app_network`, as for ncnn: the detector up to every prior's
decoded box and scores) captured by ``torch.export``, lowered to the XNNPACK
delegate (x86-64 and ARM CPUs) and written as ``model.pte`` with
``meta.json`` beside it; the app's NumPy post-processing does the rest.

INT8 (``int8=True``): PT2E post-training quantization with XNNPACK's
quantizer (int8 activations, int8 weights per output channel), calibrated on
the images given; only the detector's own layers are quantized, so the box
decoding after them stays float32. The quantized operators run in XNNPACK
as INT8 kernels.
"""
import os
import os.path as osp
from typing import Iterable, Optional, Sequence, Tuple

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


def quantize_network(network: nn.Module, example: Tuple[torch.Tensor, ...],
                     calibration: Iterable[torch.Tensor]) -> nn.Module:
    """``network`` with its ``detector`` quantized by PT2E with XNNPACK's
    quantizer (symmetric int8 per channel, static activations), the
    observers calibrated on ``calibration`` (1 x 3 x H x W batches).
    Keeping single layers in float32 (as quantize.py does for OpenVINO)
    is not offered: XNNPACK 1.5.1 refused the programs that left a
    module of the detector out (``Propagating input shapes failed``)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = XNNPACKQuantizer()
    # Only the detector's layers: the priors' arithmetic after them (box
    # decoding in input pixels) would lose whole pixels in int8.
    quantizer.set_module_name('detector', get_symmetric_quantization_config(is_per_channel=True))
    captured = torch.export.export(network, example).module()
    prepared = prepare_pt2e(captured, quantizer)
    count = 0
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
            count += 1
    if count == 0:
        raise ExportError('INT8 export needs at least one calibration image')
    return convert_pt2e(prepared)


def export_module_executorch(module: nn.Module, out_dir: str, input_size: Tuple[int, ...],
                             calibration: Optional[Sequence[torch.Tensor]] = None) -> str:
    """``module`` (one ``1 x 3 x H x W`` input of ``input_size`` (height,
    width); tensors out) captured, INT8 with ``calibration``
    (:func:`quantize_network`), lowered to XNNPACK and written to
    ``out_dir/model.pte``; returns that path."""
    partitioner, lower = _import_executorch()
    example = (torch.zeros(1, 3, *input_size), )
    module = module.eval()
    with torch.no_grad():
        if calibration is not None:
            module = quantize_network(module, example, calibration)
        exported = torch.export.export(module, example)
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
                      data_preprocessor: Optional[dict] = None,
                      calibration: Optional[Iterable[torch.Tensor]] = None) -> dict:
    """Export ``detector`` (prepared with ``prepare_for_export(fuse=True)``)
    to ``out_dir``: ``model.pte`` (XNNPACK) and ``meta.json`` (classes,
    input size, preprocessing, the app's post-processing settings). With
    ``calibration`` (preprocessed 1 x 3 x H x W images) the program is INT8
    (:func:`quantize_network`).

    Returns:
        dict: What was written into ``meta.json``.
    """
    _import_executorch()
    app = app_network(detector, input_size)
    if getattr(app.detector, 'roi_head', None) is not None:
        raise ExportError('ExecuTorch export supports single-stage detectors; a two-stage '
                          "detector's RoI head runs as a second network: export it to ncnn")
    if calibration is not None:
        calibration = list(calibration)
    export_module_executorch(app, out_dir, input_size, calibration)
    quantization = None if calibration is None else dict(
        engine='pt2e-xnnpack', backend='executorch', calibration_images=len(calibration))
    names = list(range(len(app.output_names())))
    info = app_metadata(app, EXECUTORCH_FORMAT, 'executorch', names, classes,
                        data_preprocessor, weights='int8' if quantization else 'fp32',
                        **(dict(quantization=quantization) if quantization else {}),
                        **(metadata or {}))
    write_metadata(out_dir, info)
    return info
