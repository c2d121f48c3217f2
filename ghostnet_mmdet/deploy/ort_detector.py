"""onnxruntime as a backend of MMDetection's tools: a model that runs an
exported detector (:mod:`ghostnet_mmdet.deploy.export`) behind the config's
own data preprocessor and returns ``DetDataSample`` s, so that
``Runner.test`` with ``CocoMetric``, ``inference_detector`` and the
visualizer treat it like the PyTorch detector."""
import json
import os.path as osp
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from mmdet.registry import MODELS


class DeployError(ValueError):
    """An ONNX file or input that the runtime cannot use; says why."""


def _session_options(num_threads: Optional[int]):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def load_session(onnx_file: str, num_threads: Optional[int] = None):
    """An onnxruntime CPU session for ``onnx_file``, and the metadata the
    exporter wrote into it."""
    import onnxruntime as ort
    if not osp.isfile(onnx_file):
        raise DeployError(f'ONNX file not found: {onnx_file}')
    try:
        session = ort.InferenceSession(onnx_file, _session_options(num_threads),
                                       providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime's own error types are not importable by name
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeployError(f'{onnx_file} is not an ONNX model onnxruntime can load: '
                          f'{first}') from None
    raw = session.get_modelmeta().custom_metadata_map
    if 'classes' not in raw or 'input_size' not in raw:
        raise DeployError(f'{onnx_file} was not exported by tools/deployment/pytorch2onnx.py: '
                          'it has no classes/input_size metadata')
    meta = {key: json.loads(value) for key, value in raw.items()}
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if names != ['input'] or outputs != ['dets', 'labels']:
        raise DeployError(f'{onnx_file} has inputs {names} and outputs {outputs}; '
                          "expected ['input'] and ['dets', 'labels']")
    return session, meta


@MODELS.register_module()
class OnnxRuntimeDetector(BaseModel):
    """An exported detector run by onnxruntime, with the config's data
    preprocessor in front of it.

    Args:
        onnx_file (str): The model written by
            ``tools/deployment/pytorch2onnx.py``.
        data_preprocessor (dict): The detector config's ``data_preprocessor``.
        classes (Sequence[str], optional): The config's classes; refused if
            the model was exported for others.
        num_threads (int, optional): onnxruntime's intra-op threads.
    """

    def __init__(self, onnx_file: str, data_preprocessor: dict, classes=None,
                 num_threads: Optional[int] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.onnx_file = onnx_file
        self.session, self.meta = load_session(onnx_file, num_threads)
        self.input_size = tuple(self.meta['input_size'])
        # Back to the original image as the head itself does it: YOLOXHead
        # divides by the scale factor, the other heads multiply by its inverse.
        self.divide = self.meta.get('postprocess', {}).get('head') == 'YOLOXHead'
        self.dynamic_batch = bool(self.meta.get('dynamic_batch'))
        exported = tuple(self.meta['classes'])
        if classes is not None and exported and tuple(classes) != exported:
            raise DeployError(
                f'{onnx_file} was exported for {len(exported)} classes ({", ".join(exported[:4])}'
                f'{", ..." if len(exported) > 4 else ""}), this config has {len(classes)} '
                f'({", ".join(list(classes)[:4])}{", ..." if len(classes) > 4 else ""})')
        self.dataset_meta = dict(classes=exported or tuple(classes or ()))

    def _fit_input(self, inputs: torch.Tensor) -> torch.Tensor:
        height, width = self.input_size
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise DeployError(f'{self.onnx_file} takes images as (N, 3, H, W), got a tensor of '
                              f'shape {tuple(inputs.shape)}')
        if inputs.shape[2] > height or inputs.shape[3] > width:
            raise DeployError(
                f'the test pipeline made a {inputs.shape[2]}x{inputs.shape[3]} input, larger than '
                f'the {height}x{width} that {self.onnx_file} was exported for: export with '
                f'--shape {inputs.shape[2]} {inputs.shape[3]} (or larger)')
        # Padded at the bottom and right, as MMDetection pads a batch.
        pad_value = float(getattr(self.data_preprocessor, 'pad_value', 0))
        return F.pad(inputs, (0, width - inputs.shape[3], 0, height - inputs.shape[2]),
                     value=pad_value)

    def _run(self, inputs: np.ndarray):
        if self.dynamic_batch or inputs.shape[0] == 1:
            return self.session.run(None, {'input': inputs})
        parts = [self.session.run(None, {'input': inputs[i:i + 1]})
                 for i in range(inputs.shape[0])]
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise DeployError(f'{type(self).__name__} only predicts (mode={mode!r})')
        batch = self._fit_input(inputs).float().contiguous().numpy()
        dets, labels = self._run(batch)
        dets, labels = torch.from_numpy(dets), torch.from_numpy(labels)
        for sample, image_dets, image_labels in zip(data_samples, dets, labels):
            keep = image_labels >= 0
            boxes = image_dets[keep, :4]
            scale = sample.metainfo.get('scale_factor')
            if scale is not None and self.divide:
                boxes = boxes / boxes.new_tensor(scale).repeat(2)
            elif scale is not None:
                boxes = boxes * boxes.new_tensor([1 / scale[0], 1 / scale[1]]).repeat(2)
            sample.pred_instances = InstanceData(bboxes=boxes, scores=image_dets[keep, 4],
                                                 labels=image_labels[keep])
        return data_samples
