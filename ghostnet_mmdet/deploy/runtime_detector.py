"""The MMDetection models behind ``--backend``: an exported detector run by
one of :mod:`ghostnet_mmdet.deploy.backends` behind the config's own data
preprocessor, returning ``DetDataSample`` s, so that ``Runner.test`` with
``CocoMetric``, ``inference_detector`` and the visualizer treat it like the
PyTorch detector. ONNX files end in their own post-processing; app folders
(ncnn, ExecuTorch) end at the priors' boxes and scores and are
post-processed here as an app does it (:mod:`.app_postprocess`)."""
import logging
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from mmdet.registry import MODELS

from .app_postprocess import postprocess
from .backends import BACKENDS, file_kind, load_model
from .contract import INPUT_NAMES, DeployError, model_feeds, target_runtime


def check_target_runtime(onnx_file: str, meta: Dict, backend: str) -> None:
    """Refuse an INT8 file made for another runtime (each runtime runs the
    other's INT8 file slower than float32: docs/en/deployment.md); warn
    about a float32 file exported for another runtime (the same numbers, a
    few percent slower)."""
    target = target_runtime(meta)
    if target is None or target == backend:
        return
    if meta.get('quantization'):
        raise DeployError(
            f'{onnx_file} is an INT8 file made for {target}; {backend} runs it slower than '
            f'float32. Quantize for {backend} (tools/deployment/quantize.py ... --backend '
            f'{backend}) or run it with --backend {target}')
    from mmengine.logging import print_log
    print_log(f'{onnx_file} was exported for {target} (its squeeze-excite gates in that '
              f'runtime\'s form); {backend} runs it with the same results, a little slower: '
              f'export with --backend {backend} for the fastest form', logger='current',
              level=logging.WARNING)


def pad_to_input(inputs: torch.Tensor, input_size, pad_value: float = 0) -> torch.Tensor:
    """A preprocessed batch padded at the bottom and right to the exported
    ``(height, width)``, as MMDetection pads a batch."""
    height, width = input_size
    return F.pad(inputs, (0, width - inputs.shape[3], 0, height - inputs.shape[2]),
                 value=float(pad_value))


def _names(classes) -> str:
    classes = list(classes)
    return ', '.join(classes[:4]) + (', ...' if len(classes) > 4 else '')


class RuntimeDetector(BaseModel):
    """An exported detector run by a runtime (``backend``, a name of
    :data:`~ghostnet_mmdet.deploy.backends.BACKENDS`), with the config's data
    preprocessor in front of it.

    Args:
        onnx_file (str): The file written by ``tools/deployment/pytorch2onnx.py``
            (or ``quantize.py``); for app runtimes (ncnn, ExecuTorch) the
            folder their exporter wrote.
        data_preprocessor (dict): The detector config's ``data_preprocessor``.
        classes (Sequence[str], optional): The config's classes; refused if
            the model was exported for others.
        num_threads (int, optional): The runtime's threads (default: the
            runtime's own choice, one per core).
        **options: The runtime's own options (OpenVINO's ``hint``).
    """
    backend = ''

    def __init__(self, onnx_file: str, data_preprocessor: dict, classes=None,
                 num_threads: Optional[int] = None, **options) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        if num_threads is not None and (isinstance(num_threads, bool) or
                                        not isinstance(num_threads, int) or num_threads < 1):
            raise DeployError(f'num_threads must be a positive int, got {num_threads!r}')
        self.onnx_file = onnx_file
        self.model = load_model(onnx_file, self.backend, num_threads, **options)
        self.meta = self.model.meta
        self.app = file_kind(self.backend) == 'app'
        self.input_names = list(INPUT_NAMES) if self.app else self.model.input_names
        self.input_size = tuple(self.meta['input_size'])
        check_target_runtime(onnx_file, self.meta, self.backend)
        # Back to the original image as the head itself does it (the rule its
        # head family wrote into the file; files without one: YOLOXHead
        # divides by the scale factor, the other heads multiply by its inverse).
        settings = self.meta.get('postprocess', {})
        self.divide = settings.get('rescale', 'divide' if settings.get('head') ==
                                   'YOLOXHead' else 'multiply') == 'divide'
        self.dynamic_batch = bool(self.meta.get('dynamic_batch')) or self.app
        exported = tuple(self.meta['classes'])
        if classes is not None and exported and tuple(classes) != exported:
            raise DeployError(
                f'{onnx_file} was exported for {len(exported)} classes ({_names(exported)}), '
                f'this config has {len(classes)} ({_names(classes)})')
        self.dataset_meta = dict(classes=exported or tuple(classes or ()))

    def infer(self, feeds: Dict[str, np.ndarray]):
        """``dets [N, M, 5]`` and ``labels [N, M]`` (-1: padding) for the
        graph's inputs (:func:`~ghostnet_mmdet.deploy.contract.model_feeds`)."""
        if not self.app:
            return self.model(feeds)
        settings = self.meta['postprocess']
        width = settings['max_per_img']
        roi_head = getattr(self.model, 'roi_head', None) if 'roi_head' in self.meta else None
        all_dets = np.zeros((len(feeds['input']), width, 5), np.float32)
        all_labels = np.full((len(feeds['input']), width), -1, np.int64)
        for i, (image, img_shape) in enumerate(zip(feeds['input'], feeds['img_shape'])):
            dets, labels = postprocess(self.model(image), settings, img_shape, roi_head)
            all_dets[i, :len(dets)], all_labels[i, :len(labels)] = dets, labels
        return all_dets, all_labels

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
        return pad_to_input(inputs, self.input_size, getattr(self.data_preprocessor, 'pad_value', 0))

    def _run(self, feeds: Dict[str, np.ndarray]):
        batch = feeds['input'].shape[0]
        if self.dynamic_batch or batch == 1:
            return self.infer(feeds)
        parts = [self.infer({name: value[i:i + 1] for name, value in feeds.items()})
                 for i in range(batch)]
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise DeployError(f'{type(self).__name__} only predicts (mode={mode!r})')
        batch = self._fit_input(inputs).float().contiguous().numpy()
        # Boxes are clipped at each image, not at the padding around it.
        img_shapes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
        dets, labels = self._run(model_feeds(self.input_names, batch, img_shapes))
        dets, labels = torch.from_numpy(np.asarray(dets)), torch.from_numpy(np.asarray(labels))
        for sample, image_dets, image_labels in zip(data_samples, dets, labels):
            keep = image_labels >= 0
            boxes = image_dets[keep, :4]
            scale = sample.metainfo.get('scale_factor')
            if scale is not None and self.divide:
                boxes = boxes / boxes.new_tensor(scale).repeat(2)
            elif scale is not None:
                boxes = boxes * boxes.new_tensor([1 / scale[0], 1 / scale[1]]).repeat(2)
            sample.pred_instances = InstanceData(bboxes=boxes, scores=image_dets[keep, 4],
                                                 labels=image_labels[keep].long())
        return data_samples


@MODELS.register_module()
class OnnxRuntimeDetector(RuntimeDetector):
    """An ONNX file run by onnxruntime on the CPU."""
    backend = 'onnxruntime'


@MODELS.register_module()
class OpenVINODetector(RuntimeDetector):
    """An ONNX file run by OpenVINO's CPU plugin (``hint``: its performance
    hint, ``LATENCY`` by default)."""
    backend = 'openvino'


@MODELS.register_module()
class NcnnDetector(RuntimeDetector):
    """The folder of ``pytorch2ncnn.py`` run by ncnn on the CPU (weights in
    half precision when exported with ``--fp16``), then post-processed as
    an app does it."""
    backend = 'ncnn'


@MODELS.register_module()
class ExecuTorchDetector(RuntimeDetector):
    """The folder of ``pytorch2executorch.py`` run by ExecuTorch (XNNPACK),
    then post-processed as an app does it."""
    backend = 'executorch'


# --backend NAME of tools/test.py, demo.py and the benchmarks -> its model.
RUNTIMES = {cls.backend: cls for cls in (OnnxRuntimeDetector, OpenVINODetector, NcnnDetector,
                                         ExecuTorchDetector)}
assert set(RUNTIMES) == set(BACKENDS), 'a backend without its RuntimeDetector'
