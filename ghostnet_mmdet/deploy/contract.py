"""What the export side writes and the runtime side reads: the files'
input and output names, metadata and formats, and the errors of both sides.

The deploy package runs in one direction: :mod:`.export` (torch, MMDetection's
heads) writes files that :mod:`.backends` (one module per runtime) load and
run, through this module alone; neither side imports the other's code, and
the runtime side needs no torch.

Two kinds of file:

- **ONNX** (``pytorch2onnx.py``, ``quantize.py``): the detector with its
  post-processing in the graph, inputs :data:`INPUT_NAMES` (the padded batch,
  each image's ``(height, width)`` inside it), outputs :data:`OUTPUT_NAMES`
  (``dets [N, M, 5]``, ``labels [N, M]``, -1 for padding); export metadata
  (classes, input size, post-processing settings, the runtime it was made
  for, quantization) in the model's ``metadata_props`` as JSON values.
- **App folders** (``pytorch2ncnn.py``, ``pytorch2executorch.py``): the
  network up to every prior's decoded box and scores, which an app
  post-processes itself (:mod:`.app_postprocess`), and :data:`META_FILE`
  beside it: ``format`` (:data:`APP_FORMATS`), classes, input size, the
  preprocessing, ``outputs`` (name -> the runtime's output), ``postprocess``
  (the family's settings, ``level_counts`` included).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence


class DeployError(ValueError):
    """A file or input that a runtime cannot use; says why."""


class ExportError(ValueError):
    """A detector or option the exporter does not support; says which."""


# ONNX files.
INPUT_NAMES, OUTPUT_NAMES = ['input', 'img_shape'], ['dets', 'labels']
# Head families that do not clip boxes (MMDetection's YOLOX and YOLOv3), for
# files whose metadata predates the family's own ``clip`` entry: the
# exporter drops their unused img_shape input.
UNCLIPPED_FAMILIES = ('yolox', 'yolov3')
# The runtime an INT8 file is made for -> who places its quantizers
# (ghostnet_mmdet.deploy.quantize); read backwards for files that name their
# engine alone.
INT8_ENGINES = {'openvino': 'nncf', 'onnxruntime': 'onnxruntime'}

# App folders: meta.json's "format" per runtime, and the files of each.
META_FILE = 'meta.json'
NCNN_FORMAT = 'ghostnet_mmdet-ncnn'
PARAM_FILE, BIN_FILE = 'model.ncnn.param', 'model.ncnn.bin'
# Two-stage detectors: the RoI head as a second network, pooled features in
# (1 x R x C*h*w), class probabilities and box deltas out.
ROI_PARAM_FILE, ROI_BIN_FILE = 'roi_head.ncnn.param', 'roi_head.ncnn.bin'
NCNN_INPUT_BLOB = 'in0'
EXECUTORCH_FORMAT = 'ghostnet_mmdet-executorch'
PROGRAM_FILE = 'model.pte'
APP_FORMATS = {'ncnn': (NCNN_FORMAT, (PARAM_FILE, BIN_FILE)),
               'executorch': (EXECUTORCH_FORMAT, (PROGRAM_FILE, ))}


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


def model_feeds(input_names: Sequence[str], inputs, img_shapes=None) -> Dict:
    """The graph's inputs: the padded float32 batch and, where the graph
    takes it, each image's ``(height, width)`` inside it (the whole input
    when ``img_shapes`` is not given)."""
    import numpy as np
    feeds = {'input': inputs}
    if 'img_shape' in input_names:
        if img_shapes is None:
            img_shapes = [inputs.shape[2:4]] * inputs.shape[0]
        feeds['img_shape'] = np.asarray(img_shapes, dtype=np.float32).reshape(-1, 2)
    return feeds


def app_folder(path: str, runtime: str) -> str:
    """The export folder of ``runtime`` (``ncnn``, ``executorch``) for
    ``path`` (the folder, or a file in it), its files checked."""
    fmt, files = APP_FORMATS[runtime]
    tool = f'tools/deployment/pytorch2{runtime}.py'
    folder = path if osp.isdir(path) else osp.dirname(path)
    if not osp.exists(path):
        raise DeployError(f'{runtime} model not found: {path} (give the folder that {tool} wrote)')
    for name in (META_FILE, ) + files:
        if not osp.isfile(osp.join(folder, name)):
            raise DeployError(f'{path} is not an {runtime} export of {tool}: '
                              f'{osp.join(folder, name)} is missing')
    return folder


def read_app_metadata(folder: str, runtime: str, families: Sequence[str]) -> Dict:
    """``meta.json`` of an app export folder, checked: its format is
    ``runtime``'s and its post-processing family one of ``families``."""
    fmt, _ = APP_FORMATS[runtime]
    path = osp.join(folder, META_FILE)
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise DeployError(f'{path} is not the JSON that pytorch2{runtime}.py writes: '
                          f'{first_line(err)}') from None
    if not isinstance(meta, dict) or meta.get('format') != fmt:
        raise DeployError(f'{path} was not written by tools/deployment/pytorch2{runtime}.py '
                          f'(no "format": "{fmt}")')
    family = meta.get('postprocess', {}).get('family')
    if family not in families:
        raise DeployError(f'{path} names the post-processing family {family!r}; this version '
                          f'runs {tuple(families)}')
    return meta
