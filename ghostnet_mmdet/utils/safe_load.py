"""Checkpoint loading with torch's weights-only unpickler and an exact
allowlist.

A ``.pth`` file is a pickle, and unpickling can run any code the file asks
for. Since torch 2.6 ``torch.load`` refuses that by default
(``weights_only=True``): only tensors, containers, numbers and strings load.
MMEngine's training checkpoints need a little more, and exactly this:

- ``mmengine.logging.HistoryBuffer`` (the message hub's logged scalars);
- numpy arrays, dtypes and scalars inside it (``_reconstruct``, ``ndarray``,
  ``dtype``, the numeric dtype classes such as ``numpy.dtypes.Float64DType``,
  ``scalar``), under numpy 2's ``numpy._core`` and numpy 1's ``numpy.core``
  names;
- ``builtins.getattr``, because pickle protocol 2 stores the unbound methods
  ``HistoryBuffer.min`` etc. as ``getattr(HistoryBuffer, 'min')``. The real
  ``getattr`` would reach anything (``__globals__``, ``__builtins__``), so the
  allowlist holds :func:`history_buffer_statistic` under that name instead,
  which fetches only HistoryBuffer's four statistics methods.

Published GhostNet weights (official ``state_dict_73.98.pth``, timm's
``ghostnet_100``) and this project's converted checkpoints are plain state
dicts and need none of it.

A file that asks for anything else is refused with
:class:`UnsafeCheckpointError`, naming the file and what it asked for. A user
who trusts such a file opts in per file: ``--trust-checkpoint`` on this
project's tools, or the environment variable
``GHOSTNET_MMDET_TRUSTED_CHECKPOINTS`` (paths separated by ``os.pathsep``),
or :func:`trust_checkpoint` from Python.
"""
import functools
import os
import os.path as osp
import pickle
import zipfile
from typing import Callable, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

TRUSTED_CHECKPOINTS_ENV = 'GHOSTNET_MMDET_TRUSTED_CHECKPOINTS'
# The statistics methods that HistoryBuffer registers for itself.
HISTORY_BUFFER_STATISTICS = ('current', 'max', 'mean', 'min')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says why."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint that does not fit the model it is meant for."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose unpickling needs more than the allowlist."""


class CorruptCheckpointError(CheckpointError):
    """A file that is not a readable PyTorch checkpoint (truncated, or not a
    checkpoint at all)."""


def history_buffer_statistic(owner, name: str):
    """``getattr`` as a checkpoint may call it: ``HistoryBuffer``'s
    statistics methods, and nothing else."""
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(owner, name)
    what = owner.__name__ if isinstance(owner, type) else type(owner).__name__
    raise pickle.UnpicklingError(
        f'the checkpoint calls getattr({what}, {name!r}); a checkpoint may only '
        f'look up HistoryBuffer.{{{",".join(HISTORY_BUFFER_STATISTICS)}}}')


def _numpy_allowlist() -> List:
    """numpy's pickling entry points under numpy 2 and numpy 1 names, and
    the numeric dtypes (HistoryBuffer holds float64 values and int64 counts;
    the other numbers are as inert). Object, string, void and datetime
    dtypes are not needed and stay out."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    dtype_classes = sorted({type(np.dtype(code)) for code in codes}, key=lambda c: c.__name__)
    entries = [np.ndarray, np.dtype]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    entries += [(cls, f'numpy.dtypes.{cls.__name__}') for cls in dtype_classes]
    return entries


ALLOWED_GLOBALS = [HistoryBuffer, (history_buffer_statistic, 'builtins.getattr')
                   ] + _numpy_allowlist()


def allowed_global_names() -> List[str]:
    """The names of the globals a checkpoint may use, beyond torch's own."""
    return sorted(entry[1] if isinstance(entry, tuple) else
                  f'{entry.__module__}.{entry.__qualname__}' for entry in ALLOWED_GLOBALS)


def _trusted_paths() -> List[str]:
    value = os.environ.get(TRUSTED_CHECKPOINTS_ENV, '')
    return [osp.realpath(osp.expanduser(p)) for p in value.split(os.pathsep) if p]


def is_trusted(filename: str) -> bool:
    """Whether the user opted in to a full (code-running) unpickling of
    ``filename``."""
    return osp.realpath(osp.expanduser(filename)) in _trusted_paths()


def trust_checkpoint(filename: str) -> None:
    """Opt in, for this process and its children, to loading ``filename``
    with the full unpickler. Only for files you trust: unpickling a
    checkpoint can run code."""
    paths = os.environ.get(TRUSTED_CHECKPOINTS_ENV, '')
    real = osp.realpath(osp.expanduser(filename))
    if real not in _trusted_paths():
        os.environ[TRUSTED_CHECKPOINTS_ENV] = os.pathsep.join(p for p in (paths, real) if p)


def check_checkpoint_file(filename: str) -> None:
    """Raise :class:`CorruptCheckpointError` when ``filename`` is not a
    PyTorch checkpoint (``torch.save``'s zip format or its legacy pickle),
    or is a truncated one."""
    with open(filename, 'rb') as f:
        head = f.read(4)
    size = osp.getsize(filename)
    if head.startswith(b'PK'):
        if zipfile.is_zipfile(filename):
            return
        raise CorruptCheckpointError(
            f'{filename} is a truncated or damaged checkpoint ({size} bytes; its zip '
            'directory is missing - was the run killed while saving it?)')
    if head[:1] == b'\x80':  # a pickle protocol byte: torch's legacy format
        return
    described = 'an empty file' if size == 0 else f'a file starting with {head!r}'
    raise CorruptCheckpointError(
        f'{filename} is not a PyTorch checkpoint: {described}, where torch.save writes '
        "a zip archive (starting with b'PK') or a pickle")


def _unsafe_globals(filename: str) -> List[str]:
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # a legacy-format file: the error text has to do
        return []


def _refusal(filename: str, err: Exception) -> UnsafeCheckpointError:
    unsafe = _unsafe_globals(filename)
    if unsafe:
        asked = 'it asks for ' + ', '.join(f'`{name}`' for name in unsafe)
    else:
        detail = str(err).split('WeightsUnpickler error:')[-1].strip().splitlines()[0]
        asked = f'its unpickling was stopped: {detail}'
    return UnsafeCheckpointError(
        f'refusing to load {filename}: {asked}. Checkpoints are loaded with torch\'s '
        'weights-only unpickler (tensors, containers, numbers, strings) plus what '
        "MMEngine's own training checkpoints need ("
        + ', '.join(allowed_global_names()[:4]) + ', ...): anything more could run code '
        'while loading. If you trust this file, load it with --trust-checkpoint '
        f'(this project\'s tools) or {TRUSTED_CHECKPOINTS_ENV}={filename}')


def safe_torch_load(filename: str, map_location=None):
    """``torch.load`` of a local file with the weights-only unpickler and
    :data:`ALLOWED_GLOBALS`, unless the user trusts the file.

    Raises:
        FileNotFoundError: No such file.
        CorruptCheckpointError: Truncated, or not a checkpoint.
        UnsafeCheckpointError: It needs more than the allowlist.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    check_checkpoint_file(filename)
    if is_trusted(filename):
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(filename, err) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise CorruptCheckpointError(
            f'{filename} could not be read as a PyTorch checkpoint: {err}') from None


def guard_loader(loader: Callable) -> Callable:
    """Wrap one of MMEngine's remote checkpoint loaders (``http://``,
    ``open-mmlab://``, ...) so that torch's weights-only unpickling inside it
    accepts :data:`ALLOWED_GLOBALS` and nothing more."""
    if getattr(loader, '_ghostnet_mmdet_guarded', False):
        return loader

    @functools.wraps(loader)
    def guarded(*args, **kwargs):
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return loader(*args, **kwargs)

    guarded._ghostnet_mmdet_guarded = True
    return guarded
