"""What every deploy backend shares: a model that runs an exported detector
(:mod:`ghostnet_mmdet.deploy.export`) behind the config's own data
preprocessor and returns ``DetDataSample`` s, so that ``Runner.test`` with
``CocoMetric``, ``inference_detector`` and the visualizer treat it like the
PyTorch detector. A runtime adds how it loads the file and runs a batch
(:class:`~ghostnet_mmdet.deploy.OnnxRuntimeDetector`,
:class:`~ghostnet_mmdet.deploy.OpenVINODetector`)."""
import json
import logging
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData


class DeployError(ValueError):
    """An ONNX file or input that the runtime cannot use; says why."""


INPUT_NAMES, OUTPUT_NAMES = ['input', 'img_shape'], ['dets', 'labels']
# Head families that do not clip boxes (MMDetection's YOLOX and YOLOv3), for
# files whose metadata predates the family's own ``clip`` entry: the
# exporter drops their unused img_shape input.
UNCLIPPED_FAMILIES = ('yolox', 'yolov3')
# The runtime an INT8 file is made for -> who places its quantizers
# (ghostnet_mmdet.deploy.quantize); read backwards for files that name their
# engine alone.
INT8_ENGINES = {'openvino': 'nncf', 'onnxruntime': 'onnxruntime'}


def first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_export_metadata(onnx_file: str) -> Dict:
    """The metadata that ``export_onnx`` wrote into ``onnx_file`` (classes,
    input size, post-processing, fused, quantization ...)."""
    import onnx
    try:
        model = onnx.load(onnx_file, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends
        raise DeployError(f'{onnx_file} is not an ONNX model: {first_line(err)}') from None
    raw = {entry.key: entry.value for entry in model.metadata_props}
    if 'classes' not in raw or 'input_size' not in raw:
        raise DeployError(f'{onnx_file} was not exported by tools/deployment/pytorch2onnx.py: '
                          'it has no classes/input_size metadata')
    return {key: json.loads(value) for key, value in raw.items()}


def check_model_file(onnx_file: str) -> None:
    if not osp.isfile(onnx_file):
        raise DeployError(f'ONNX file not found: {onnx_file}')


def check_io_names(onnx_file: str, inputs: List[str], outputs: List[str], meta: Dict) -> None:
    """Refuse a file whose inputs and outputs are not the exporter's."""
    postprocess = meta.get('postprocess', {})
    clips = postprocess.get('clip', postprocess.get('family') not in UNCLIPPED_FAMILIES)
    if not clips and inputs == INPUT_NAMES[:1]:
        inputs = INPUT_NAMES
    if inputs != INPUT_NAMES or outputs != OUTPUT_NAMES:
        raise DeployError(f'{onnx_file} has inputs {inputs} and outputs {outputs}; '
                          f'expected {INPUT_NAMES} and {OUTPUT_NAMES} (files exported before '
                          'the img_shape input: export them again)')


def target_runtime(meta: Dict) -> Optional[str]:
    """The runtime a file was made for: its INT8 quantization's, else its
    export form's (None for files that name none)."""
    quantization = meta.get('quantization')
    if quantization:
        engine = quantization.get('engine')
        return quantization.get('backend') or next(
            (runtime for runtime, name in INT8_ENGINES.items() if name == engine), None)
    return meta.get('backend')


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


def input_names(model) -> List[str]:
    """The input names of an onnxruntime session or an OpenVINO (compiled)
    model."""
    if hasattr(model, 'get_inputs'):
        return [i.name for i in model.get_inputs()]
    return [port.get_any_name() for port in model.inputs]


def runtime_call(onnx_file: str, backend: str, num_threads: Optional[int] = None, *,
                 optimization: str = 'all', disabled_optimizers: Sequence[str] = (),
                 hint: str = 'LATENCY', check_export: bool = True) -> Callable[[Dict], object]:
    """A function that runs ``onnx_file`` once in ``backend`` (``onnxruntime``
    with its graph ``optimization`` level and ``disabled_optimizers``, or
    ``openvino`` with its performance ``hint``) on the graph inputs it is
    given (name -> array; names the file does not take are left out): what
    the speed checks and benchmarks time."""
    if backend == 'onnxruntime':
        from .ort_detector import load_session
        session, _ = load_session(onnx_file, num_threads, optimization, check_export=check_export,
                                  disabled_optimizers=disabled_optimizers)
        names = set(input_names(session))
        return lambda feeds: session.run(
            None, {key: value for key, value in feeds.items() if key in names})
    if backend == 'openvino':
        from .openvino_detector import compile_openvino
        compiled, _ = compile_openvino(onnx_file, num_threads, hint, check_export=check_export)
        request = compiled.create_infer_request()
        names = set(input_names(compiled))
        return lambda feeds: request.infer(
            {key: value for key, value in feeds.items() if key in names})
    raise DeployError(f'backend must be onnxruntime or openvino, got {backend!r}')


def model_feeds(input_names: List[str], inputs: np.ndarray, img_shapes=None) -> Dict:
    """The graph's inputs: the padded float32 batch and, where the graph
    takes it, each image's ``(height, width)`` inside it (the whole input
    when ``img_shapes`` is not given)."""
    feeds = {'input': inputs}
    if 'img_shape' in input_names:
        if img_shapes is None:
            img_shapes = [inputs.shape[2:4]] * inputs.shape[0]
        feeds['img_shape'] = np.asarray(img_shapes, dtype=np.float32).reshape(-1, 2)
    return feeds


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
    """An exported detector run by a runtime, with the config's data
    preprocessor in front of it.

    Args:
        onnx_file (str): The model written by
            ``tools/deployment/pytorch2onnx.py`` (or ``quantize.py``).
        data_preprocessor (dict): The detector config's ``data_preprocessor``.
        classes (Sequence[str], optional): The config's classes; refused if
            the model was exported for others.
        num_threads (int, optional): The runtime's threads (default: the
            runtime's own choice, one per core).
    """
    backend = ''

    def __init__(self, onnx_file: str, data_preprocessor: dict, classes=None,
                 num_threads: Optional[int] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        if num_threads is not None and (isinstance(num_threads, bool) or
                                        not isinstance(num_threads, int) or num_threads < 1):
            raise DeployError(f'num_threads must be a positive int, got {num_threads!r}')
        self.onnx_file = onnx_file
        self.meta, self.input_names = self._load(onnx_file, num_threads)
        self.input_size = tuple(self.meta['input_size'])
        check_target_runtime(onnx_file, self.meta, self.backend)
        # Back to the original image as the head itself does it (the rule its
        # head family wrote into the file; files without one: YOLOXHead
        # divides by the scale factor, the other heads multiply by its inverse).
        postprocess = self.meta.get('postprocess', {})
        self.divide = postprocess.get('rescale', 'divide' if postprocess.get('head') ==
                                      'YOLOXHead' else 'multiply') == 'divide'
        self.dynamic_batch = bool(self.meta.get('dynamic_batch'))
        exported = tuple(self.meta['classes'])
        if classes is not None and exported and tuple(classes) != exported:
            raise DeployError(
                f'{onnx_file} was exported for {len(exported)} classes ({_names(exported)}), '
                f'this config has {len(classes)} ({_names(classes)})')
        self.dataset_meta = dict(classes=exported or tuple(classes or ()))

    def _load(self, onnx_file: str, num_threads: Optional[int]) -> Tuple[Dict, List[str]]:
        """Load the file into the runtime; return its export metadata and
        its input names."""
        raise NotImplementedError

    def infer(self, feeds: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """``dets`` and ``labels`` for the graph's inputs (:func:`model_feeds`)."""
        raise NotImplementedError

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
