"""What the command-line tools share: the errors that are the user's to fix,
reported as one clear message and exit status 2 instead of a traceback."""
import functools
import os.path as osp
import sys

from ..deploy import DeployError, ExportError
from ..utils.dataset_check import DatasetError, DatasetNotFoundError
from ..utils.safe_load import CheckpointError, trust_checkpoint
from .config_check import ConfigError
from .inference import load_detector

# Errors whose message says what is wrong and what to do.
USER_ERRORS = (CheckpointError, ConfigError, DatasetError, DatasetNotFoundError, DeployError,
               ExportError)


def reports_user_errors(main):
    """Decorate a tool's ``main``: a :data:`USER_ERRORS` exception becomes
    ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            print(f'error: {err}', file=sys.stderr)
            return 2

    return wrapper


def add_trust_argument(parser, what: str) -> None:
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help=f'load {what} with the full unpickler, which can run code from the file: '
        'only for a file you trust that the safe loader refuses')


def missing_input(config: str, checkpoint: str, backend: str = 'pytorch', urls: bool = True):
    """The first of ``config`` and ``checkpoint`` that is not there, as
    ``(what, path)``, or None: the checkpoint of an app runtime (``--backend
    ncnn``, ``executorch``) is the folder its exporter wrote, every other
    input a file; with ``urls``, URLs are taken as there."""
    from ..deploy.backends import file_kind
    folder = backend != 'pytorch' and file_kind(backend) == 'app'
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        found = osp.exists(path) if what == 'checkpoint' and folder else osp.isfile(path)
        if not found and not (urls and '://' in path):
            return what, path
    return None


def export_parser(description: str, out_help: str):
    """The arguments every export tool (pytorch2onnx.py, pytorch2ncnn.py,
    quantize.py) takes: the config, the checkpoint, ``--out``, ``--shape``
    and ``--trust-checkpoint``; each tool adds its own."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='detector config file')
    parser.add_argument('checkpoint', help='trained checkpoint of that detector')
    parser.add_argument('--out', required=True, help=out_help)
    parser.add_argument('--shape', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        help='input size (default: the side of the test pipeline\'s Resize, '
                        'rounded up to the preprocessor\'s pad_size_divisor, square)')
    add_trust_argument(parser, 'the checkpoint')
    return parser


def load_detector_to_export(config: str, checkpoint: str, trust: bool = False):
    """What the export tools (pytorch2onnx.py, quantize.py) share: both files
    exist, the checkpoint is trusted if the user said so, and the detector
    is loaded with it (checked to fit)."""
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise ExportError(f'{what} file not found: {path}')
    if trust:
        trust_checkpoint(checkpoint)
    return load_detector(config, checkpoint)


def verify_on_image(cfg, model, runtime, image: str, name: str, score_atol: float = 1e-5,
                    box_atol: float = 1e-4) -> None:
    """``--verify`` of the export tools: PyTorch's ``model`` and a deploy
    ``runtime`` (a :class:`~ghostnet_mmdet.deploy.RuntimeDetector`) on one
    image, and one line that says whether their detections are the same
    (equal labels, scores within ``score_atol``, boxes within ``box_atol``
    pixels)."""
    import torch
    from mmdet.apis import inference_detector
    from ..deploy import match_detections
    runtime.cfg = cfg
    with torch.no_grad():
        expected = inference_detector(model, image).pred_instances
        actual = inference_detector(runtime, image).pred_instances
    mismatch = match_detections(expected, actual, score_atol=score_atol, box_atol=box_atol)
    print(f'verify {image}: PyTorch {len(expected)} detections, {name} {len(actual)}: '
          + (f'they differ: {mismatch}' if mismatch else
             f'the same detections (labels equal, scores within {score_atol:g}, boxes within '
             f'{box_atol:g} px)'))


def detector_to_export(args, fuse: bool = True):
    """The export tools' detector from their arguments (:func:`export_parser`):
    loaded with the checkpoint (checked to fit), prepared for export
    (``fuse``: BatchNorm folded, the backbone deployed). Returns the detector,
    its config, its classes and the input size (``--shape``, or the test
    pipeline's)."""
    from ..deploy import default_input_size, prepare_for_export
    model = load_detector_to_export(args.config, args.checkpoint, args.trust_checkpoint)
    cfg = model.cfg
    input_size = tuple(args.shape) if args.shape else default_input_size(cfg)
    prepare_for_export(model, fuse=fuse)
    return model, cfg, model.dataset_meta['classes'], input_size


def tool_config(args):
    """The config of tools/train.py and tools/test.py: ``args.config`` with
    ``--launcher`` and ``--cfg-options`` applied and its work_dir set
    (``--work-dir`` > the config's > ``./work_dirs/<config name>``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def add_tta(cfg) -> None:
    """MMDetection's tools/test.py --tta: the config's ``tta_model`` around its
    model and ``tta_pipeline`` as the test pipeline (defaults when missing)."""
    import warnings
    from copy import deepcopy
    from mmengine import ConfigDict
    if 'tta_model' not in cfg:
        warnings.warn('Cannot find ``tta_model`` in config, we will set it as default.')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        warnings.warn('Cannot find ``tta_pipeline`` in config, we will set it as default.')
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                        [dict(type='PackDetInputs',
                              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                         'scale_factor', 'flip', 'flip_direction'))]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
