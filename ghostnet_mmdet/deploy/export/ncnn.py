"""Export a detector to ncnn (through pnnx) for phones: the app network
(:mod:`.app_network`: the detector up to every prior's decoded box and
scores) traced and converted by pnnx, ``model.ncnn.param``/``.bin`` with
``meta.json`` beside them; a two-stage detector's RoI head as a second
network (``roi_head.ncnn.param``/``.bin``).

The backbone goes in its deployed form (BatchNorm folded, branches merged)
and nothing more: ncnn packs channels by 4 (ARM NEON) or 8 (AVX) whatever
the count, and there the onnxruntime/OpenVINO split form doubles the layers
(GhostNet-1.0x's backbone: 218 plain, 412 split). Heads and necks have their
BatchNorm folded by ``prepare_for_export(fuse=True)``.
"""
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..contract import (BIN_FILE, NCNN_FORMAT, NCNN_INPUT_BLOB, PARAM_FILE, ROI_BIN_FILE,
                        ROI_PARAM_FILE, ExportError)
from .app_network import RoIHeadForApp, app_metadata, app_network, unshare_calls, write_metadata

# The number of RoIs the RoI head is traced with (ncnn runs it on any).
ROI_TRACE_COUNT = 64


def _run_pnnx(traced_file: str, shape: Tuple[int, ...], work_dir: str,
              fp16: bool) -> Tuple[str, str]:
    """pnnx on a TorchScript file (one input of ``shape``): the ncnn
    ``.param`` and ``.bin`` paths."""
    import pnnx
    param, weights = osp.join(work_dir, PARAM_FILE), osp.join(work_dir, BIN_FILE)
    command = [pnnx.EXEC_PATH, traced_file,
               f'inputshape=[{",".join(str(side) for side in shape)}]f32',
               'device=cpu', f'fp16={int(fp16)}', f'ncnnparam={param}', f'ncnnbin={weights}',
               *(f'{key}={osp.join(work_dir, name)}' for key, name in (
                   ('pnnxparam', 'model.pnnx.param'), ('pnnxbin', 'model.pnnx.bin'),
                   ('pnnxpy', 'model_pnnx.py'), ('pnnxonnx', 'model.pnnx.onnx'),
                   ('ncnnpy', 'model_ncnn.py')))]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=work_dir)
    if result.returncode != 0 or not osp.isfile(param) or not osp.isfile(weights):
        tail = '\n'.join(result.stdout.strip().splitlines()[-10:])
        raise ExportError(f'pnnx could not convert the network (exit status {result.returncode}):'
                          f'\n{tail}')
    return param, weights


def layer_counts(param_file: str) -> Dict[str, int]:
    """Layers of an ncnn ``.param`` file by type (the ``Input`` included)."""
    counts: Dict[str, int] = {}
    with open(param_file) as f:
        lines = f.read().splitlines()
    for line in lines[2:]:
        if line.strip():
            kind = line.split()[0]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def export_network_ncnn(network: nn.Module, out_dir: str, input_size: Tuple[int, ...],
                        fp16: bool = False,
                        files: Tuple[str, str] = (PARAM_FILE, BIN_FILE)) -> Tuple[str, str]:
    """Trace ``network`` (an image of ``input_size`` (height, width) in, or
    a tensor of the full shape ``input_size``; tensors out) and convert it
    with pnnx into ``out_dir/files`` (``model.ncnn.param`` and ``.bin``),
    float32 weights unless ``fp16``. Returns both paths."""
    try:
        import pnnx  # noqa: F401  (its converter binary)
    except ImportError:
        raise ExportError('ncnn export needs pnnx: pip install --no-deps pnnx==20261020 '
                          '(tools/setup_env.sh installs it)') from None
    os.makedirs(out_dir, exist_ok=True)
    network = network.eval()
    shape = tuple(input_size) if len(input_size) > 2 else (1, 3, *input_size)
    dummy = torch.rand(*shape)
    with tempfile.TemporaryDirectory() as work_dir, torch.no_grad():
        traced_file = osp.join(work_dir, 'model.pt')
        torch.jit.trace(network, dummy, check_trace=False).save(traced_file)
        param, weights = _run_pnnx(traced_file, shape, work_dir, fp16)
        # pnnx leaves what it cannot lower under its PyTorch name (e.g.
        # Tensor.slice with a step, YOLOX's Focus): ncnn cannot load those.
        left = sorted(kind for kind in layer_counts(param) if '.' in kind)
        if left:
            raise ExportError(f'pnnx left operators ncnn does not have: {", ".join(left)} '
                              '(e.g. strided slices, as in YOLOX\'s Focus stem); this network '
                              'cannot be exported to ncnn')
        shutil.copy(param, osp.join(out_dir, files[0]))
        shutil.copy(weights, osp.join(out_dir, files[1]))
    return osp.join(out_dir, files[0]), osp.join(out_dir, files[1])


def export_ncnn(detector: nn.Module, out_dir: str, input_size: Tuple[int, int],
                classes: Optional[Sequence[str]] = None, metadata: Optional[dict] = None,
                fp16: bool = False, data_preprocessor: Optional[dict] = None) -> dict:
    """Export ``detector`` (prepared with ``prepare_for_export``) to
    ``out_dir``: ``model.ncnn.param``, ``model.ncnn.bin`` and ``meta.json``
    (classes, input size, preprocessing, the app's post-processing
    settings, the layers by type). ``fp16`` stores the weights in half
    precision (half the file; ncnn computes in float32 on x86).

    Returns:
        dict: What was written into ``meta.json``.
    """
    network = app_network(detector, input_size)
    unshare_calls(network, torch.zeros(1, 3, *input_size))
    param, _ = export_network_ncnn(network, out_dir, input_size, fp16=fp16)
    layers = layer_counts(param)
    extra = {}
    roi_head = getattr(network.detector, 'roi_head', None)
    if roi_head is not None:
        extractor = roi_head.bbox_roi_extractor
        height, width = extractor.roi_layers[0].output_size
        shape = (1, ROI_TRACE_COUNT, extractor.out_channels * height * width)
        roi_param, _ = export_network_ncnn(RoIHeadForApp(roi_head), out_dir, shape, fp16=fp16,
                                           files=(ROI_PARAM_FILE, ROI_BIN_FILE))
        extra = dict(roi_head=dict(param=ROI_PARAM_FILE, bin=ROI_BIN_FILE, input=NCNN_INPUT_BLOB,
                                   outputs=dict(scores='out0', deltas='out1'),
                                   layers=layer_counts(roi_param)))
    names = [f'out{i}' for i in range(len(network.output_names()))]
    info = app_metadata(network, NCNN_FORMAT, 'ncnn', names, classes, data_preprocessor,
                        input=NCNN_INPUT_BLOB, weights='fp16' if fp16 else 'fp32',
                        layers=layers, **extra, **(metadata or {}))
    write_metadata(out_dir, info)
    return info
