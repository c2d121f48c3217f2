"""INT8 post-training quantization of an exported detector: onnxruntime's
static quantization in QDQ form (QuantizeLinear/DequantizeLinear pairs
around the INT8 convolutions), calibrated on training images of the
config's own dataset. A QDQ file is plain ONNX: onnxruntime fuses the pairs
into INT8 convolutions, OpenVINO reads them as FakeQuantize and runs the
same convolutions in INT8, so one file serves both runtimes.

Convolutions are quantized per output channel (weights int8, symmetric)
with uint8 activations; the layers that usually cost accuracy can be kept
in float32 by kind (:data:`KEEP_FP32_KINDS`).
"""
import copy
import json
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from .runtime_detector import DeployError, pad_to_input

# Kinds of convolution that quantize() can keep in float32.
KEEP_FP32_KINDS = ('stem', 'depthwise', 'se', 'attention', 'head_output')
# The default: measured on GhostShapes (README), the first conv, the
# squeeze-excite and DFC gates and the head's predictors stay float32.
DEFAULT_KEEP_FP32 = ('stem', 'se', 'attention', 'head_output')


def conv_kinds(detector: nn.Module) -> Dict[str, List[str]]:
    """Module paths of the detector's convolutions, by kind: ``stem`` (the
    backbone's first conv), ``depthwise``, ``se`` (squeeze-excite),
    ``attention`` (GhostNetV2's DFC), ``head_output`` (the bbox head's
    predictors: plain convs outside its ConvModules), ``other``."""
    kinds = {kind: [] for kind in KEEP_FP32_KINDS + ('other', )}
    modules = dict(detector.named_modules())
    first_conv = next((name for name, module in detector.named_modules()
                       if isinstance(module, nn.Conv2d) and name.startswith('backbone.')), None)
    for name, module in modules.items():
        if not isinstance(module, nn.Conv2d):
            continue
        parent = modules.get(name.rpartition('.')[0])
        if name == first_conv:
            kind = 'stem'
        elif module.groups > 1 and module.groups == module.in_channels:
            kind = 'depthwise'
        elif '.se.' in name:
            kind = 'se'
        elif '.short_conv.' in name:
            kind = 'attention'
        elif name.startswith('bbox_head.') and not isinstance(parent, ConvModule):
            kind = 'head_output'
        else:
            kind = 'other'
        kinds[kind].append(name)
    return kinds


def onnx_conv_nodes(model, module_paths: Iterable[str], prefix: str = 'detector.') -> List[str]:
    """Names of the ONNX Conv nodes of these module paths, found by their
    weights: the TorchScript exporter names a parameter by its path in the
    exported wrapper (``detector.`` + the detector's path + ``.weight``),
    and a head conv shared by the levels gives one node per level."""
    wanted = {prefix + path + '.weight' for path in module_paths}
    return [node.name for node in model.graph.node
            if node.op_type == 'Conv' and len(node.input) > 1 and node.input[1] in wanted]


def calibration_inputs(cfg, num_images: int, input_size, seed: int = 0) -> List[np.ndarray]:
    """``num_images`` training images of the config's dataset (spread over
    it by a seeded draw), through the test pipeline and the data
    preprocessor, padded to the exported size: float32 ``1x3xHxW``."""
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import get_test_pipeline_cfg
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while 'dataset' in dataset_cfg:  # RepeatDataset, MultiImageMixDataset ...
        dataset_cfg = dataset_cfg['dataset']
    dataset_cfg['pipeline'] = get_test_pipeline_cfg(cfg)
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise DeployError('the training dataset of the config is empty: nothing to calibrate on')
    if num_images < 1:
        raise DeployError(f'--calib-images must be at least 1, got {num_images}')
    count = min(num_images, len(dataset))
    indices = np.random.default_rng(seed).choice(len(dataset), count, replace=False)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = []
    with torch.no_grad():
        for index in sorted(indices.tolist()):
            item = dataset[index]
            data = preprocessor(dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
                                False)
            inputs.append(pad_to_input(data['inputs'], input_size,
                                       getattr(preprocessor, 'pad_value', 0)).numpy())
    return inputs


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of inputs."""

    def __init__(self, inputs: Sequence[np.ndarray]) -> None:
        self.inputs = iter(inputs)

    def get_next(self):
        batch = next(self.inputs, None)
        return None if batch is None else {'input': batch}


def quantize_onnx(fp32_file: str, out_file: str, inputs: Sequence[np.ndarray],
                  keep_fp32_nodes: Sequence[str] = (), calibration: str = 'minmax',
                  reduce_range: bool = False, extra_metadata: Optional[dict] = None) -> dict:
    """Quantize the convolutions of ``fp32_file`` (an exported detector)
    to INT8 QDQ, except ``keep_fp32_nodes``, calibrated on ``inputs``;
    write ``out_file`` with the FP32 file's metadata plus a
    ``quantization`` record. Returns that record."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    methods = dict(minmax=CalibrationMethod.MinMax, percentile=CalibrationMethod.Percentile,
                   entropy=CalibrationMethod.Entropy)
    if calibration not in methods:
        raise DeployError(f'calibration must be one of {list(methods)}, got {calibration!r}')
    fp32 = onnx.load(fp32_file)
    convs = [node.name for node in fp32.graph.node if node.op_type == 'Conv']
    quantize_static(fp32_file, out_file, _Reader(inputs), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=['Conv'], per_channel=True, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(keep_fp32_nodes), calibrate_method=methods[calibration],
                    calibration_providers=['CPUExecutionProvider'],
                    extra_options=dict(WeightSymmetric=True, ActivationSymmetric=False))
    record = dict(format='QDQ', weights='int8 per channel', activations='uint8',
                  calibration=calibration, calibration_images=len(inputs),
                  reduce_range=reduce_range, int8_convs=len(convs) - len(set(keep_fp32_nodes)),
                  fp32_convs=len(set(keep_fp32_nodes)), **(extra_metadata or {}))
    quantized = onnx.load(out_file)
    del quantized.metadata_props[:]
    for entry in fp32.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    quantized.metadata_props.add(key='quantization', value=json.dumps(record))
    onnx.save(quantized, out_file)
    return record
