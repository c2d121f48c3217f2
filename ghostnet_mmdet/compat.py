"""Run-time fixes for the torch 2.14 + mmengine 0.10.7 stack, applied on
``import ghostnet_mmdet``.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6.
   MMEngine 0.10.7 calls it without the argument, but its training
   checkpoints hold more than tensors (the message hub's ``HistoryBuffer``
   with numpy arrays and bound methods), so ``--resume``, ``load_from`` and
   ``tools/test.py`` fail with ``Weights only load failed``. We re-register
   MMEngine's loader for local files with ``weights_only=False``: the
   behaviour MMEngine was written for. Like any pickle, only load
   checkpoints you trust. Other loaders (``http://``...) are left as they are.
2. MMEngine resolves ``mmdet::`` config bases through ``pkg_resources``,
   which setuptools 82 removed. ``setup.py`` pins ``setuptools<80.9``; if it is
   missing anyway, we say so at import instead of failing later deep inside
   config parsing.
"""
import os.path as osp
import warnings

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_trusted_local_checkpoint(filename: str, map_location=None):
    """MMEngine's local-file checkpoint loader, with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def apply() -> None:
    """Apply the fixes (idempotent)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_trusted_local_checkpoint, force=True)
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
