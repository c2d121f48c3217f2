"""Run-time fixes for the torch 2.14 + mmengine 0.10.7 stack, applied on
``import ghostnet_mmdet``.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, which
   refuses MMEngine 0.10.7's own training checkpoints (the message hub's
   ``HistoryBuffer`` with numpy arrays), breaking ``--resume``, ``load_from``
   and ``tools/test.py``. MMEngine's loader for local files is replaced by
   :func:`~ghostnet_mmdet.utils.safe_load.safe_torch_load`: still the
   weights-only unpickler, with exactly the allowlist those checkpoints need
   (see :mod:`ghostnet_mmdet.utils.safe_load`), and clear errors for unsafe,
   truncated and non-checkpoint files. MMEngine's other loaders
   (``http://``, ``open-mmlab://``, ...) run with the same allowlist.
2. MMEngine resolves ``mmdet::`` config bases through ``pkg_resources``,
   which setuptools 82 removed. ``setup.py`` pins ``setuptools<80.9``; if it is
   missing anyway, we say so at import instead of failing later deep inside
   config parsing.
3. MMEngine 0.10.7's ``LoggerHook.after_test_epoch`` dumps the test metrics
   JSON from every rank into the same file, so after ``dist_test.sh`` a
   shorter write can leave the tail of a longer one behind it (invalid
   JSON). The dump is made on rank 0 only; every rank still logs the line.
4. MMDetection 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads
   ``self.loss_cls``, which ``SSDHead`` never sets (it skips AnchorHead's
   constructor), so every SSD and SSDLite fails to predict
   (open-mmlab/mmdetection#11780). ``SSDHead`` gets ``loss_cls = None`` as a
   class attribute: no custom score activation, its own softmax.
5. MMDetection 3.3.0's ``RTMDetSepBNHead`` with ``use_depthwise=True`` and
   its default ``share_conv=True`` fails to build (``'DepthwiseSeparableConvModule'
   object has no attribute 'conv'``): it shares ``.conv`` across levels,
   which a depthwise-separable module has twice. Its layers are built
   unshared and then shared as MMDetection shares them: every level's
   convolutions (both, for a depthwise-separable module) are level 0's,
   each level keeping its own norms.
"""
import warnings

from mmengine.runner.checkpoint import CheckpointLoader

from .utils.safe_load import guard_loader, safe_torch_load


def _dump_test_metrics_on_rank_zero() -> None:
    from mmengine.dist import is_main_process
    from mmengine.hooks import LoggerHook
    original = LoggerHook.after_test_epoch
    if getattr(original, 'rank_zero_dump', False):
        return

    def after_test_epoch(self, runner, metrics=None):
        if is_main_process():
            return original(self, runner, metrics)
        _, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
        runner.logger.info(log_str)

    after_test_epoch.rank_zero_dump = True
    LoggerHook.after_test_epoch = after_test_epoch


def _let_ssd_heads_predict() -> None:
    from mmdet.models.dense_heads import SSDHead
    if not hasattr(SSDHead, 'loss_cls'):
        SSDHead.loss_cls = None


def _conv_modules(module):
    """The ConvModules of a ConvModule (itself) or of a
    DepthwiseSeparableConvModule (its two)."""
    if hasattr(module, 'depthwise_conv'):
        return [module.depthwise_conv, module.pointwise_conv]
    return [module]


def _share_rtmdet_depthwise_convs() -> None:
    from mmdet.models.dense_heads import RTMDetSepBNHead
    original = RTMDetSepBNHead._init_layers
    if getattr(original, 'shares_depthwise', False):
        return

    def _init_layers(self) -> None:
        share, self.share_conv = self.share_conv, False
        try:
            original(self)
        finally:
            self.share_conv = share
        if not share:
            return
        for level in range(1, len(self.prior_generator.strides)):
            for convs in (self.cls_convs, self.reg_convs):
                for module, first in zip(convs[level], convs[0]):
                    for target, source in zip(_conv_modules(module), _conv_modules(first)):
                        target.conv = source.conv

    _init_layers.shares_depthwise = True
    RTMDetSepBNHead._init_layers = _init_layers


def apply() -> None:
    """Apply the fixes (idempotent)."""
    _dump_test_metrics_on_rank_zero()
    _let_ssd_heads_predict()
    _share_rtmdet_depthwise_convs()
    # MMEngine keeps its registered loaders in ``_schemes`` (no public getter).
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if prefix:
            CheckpointLoader.register_scheme(prefix, guard_loader(loader), force=True)
    CheckpointLoader.register_scheme(prefixes='', loader=safe_torch_load, force=True)
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        warnings.warn(
            "pkg_resources is not importable, so MMEngine cannot resolve "
            "'mmdet::' config bases; install 'setuptools>=77.0.3,<80.9' "
            '(setuptools 82 removed pkg_resources)', RuntimeWarning)


with warnings.catch_warnings():
    # Should a setuptools >= 80.9 be installed anyway, its deprecation warning
    # about pkg_resources is known and not the user's to act on.
    warnings.simplefilter('ignore', UserWarning)
    apply()
