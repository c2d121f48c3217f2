"""Build a detector from its config and load a checkpoint that fits it:
what the demo, the exporter and the benchmarks share."""
from typing import Optional, Union

from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmdet.registry import DATASETS, MODELS

from ..deploy import prepare_for_export
from ..utils.benchmark import spread_head_scores
from .checkpoint_check import check_detector_checkpoint


def config_metainfo(cfg: Config) -> dict:
    """The test dataset's metainfo (classes, palette) without loading it."""
    return dict(DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo)


def load_detector(config: Union[str, Config], checkpoint: Optional[str] = None,
                  device: str = 'cpu'):
    """The detector of ``config`` (a file, a package config such as
    ``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'``, or a Config) in eval mode, with ``checkpoint`` loaded
    after :func:`check_detector_checkpoint` accepted it (strictly), and, as
    MMDetection's ``init_detector`` gives it, ``model.cfg`` and
    ``model.dataset_meta`` (the checkpoint's classes, the config's palette).
    Without a checkpoint the weights are the config's initialisation, minus
    pretrained backbone weights."""
    if isinstance(config, str):
        # 'mmdet::retinanet/...py' names a config inside an installed package.
        cfg = get_config(config) if '::' in config else Config.fromfile(config)
    else:
        cfg = config
    cfg.model.backbone.init_cfg = None  # the checkpoint has every weight
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    metainfo = config_metainfo(cfg)
    if checkpoint:
        check_detector_checkpoint(model, checkpoint)
        loaded = load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
        saved = (loaded.get('meta') or {}).get('dataset_meta') or {}
        metainfo.update({key.lower(): value for key, value in saved.items()})
    else:
        model.init_weights()
    model.cfg = cfg
    model.dataset_meta = metainfo
    return model.to(device).eval()


def detector_to_time(config: Union[str, Config], checkpoint: Optional[str] = None,
                     deploy_form: bool = False):
    """A detector for the latency benchmarks: ``checkpoint`` loaded (checked
    to fit), or, without one, the config's initialisation with
    :func:`~ghostnet_mmdet.utils.benchmark.spread_head_scores`, so that NMS
    has a trained model's work. With ``deploy_form``, what every benchmark
    means by "fused": the deploy form that ``pytorch2onnx.py --fuse``
    exports (backbone ``switch_to_deploy``, every other BatchNorm folded)
    and, for PyTorch, a GhostNet backbone in NHWC (its fastest eager layout)."""
    model = load_detector(config, checkpoint)
    if not checkpoint:
        spread_head_scores(model)
    if deploy_form:
        prepare_for_export(model, fuse=True)
        if hasattr(model.backbone, 'channels_last'):
            model.backbone.channels_last = True
    return model
