"""ExecuTorch (PyTorch's on-device runtime, XNNPACK delegate): runs the
folders of ``pytorch2executorch.py`` (``model.pte``, ``meta.json``). As for
ncnn, the program stops at every prior's decoded box and scores and the
app's post-processing (:mod:`ghostnet_mmdet.deploy.app_postprocess`) does
the rest. ExecuTorch's Python runtime takes and gives torch tensors."""
import os.path as osp
from typing import Dict, Optional

import numpy as np

from ..app_postprocess import APP_FAMILIES
from ..contract import PROGRAM_FILE, DeployError, app_folder, first_line, read_app_metadata

FILE_KIND = 'app'


def set_threads(num_threads: Optional[int]) -> None:
    """ExecuTorch's thread pool (shared by every program of the process) to
    ``num_threads`` threads (None: leave it, one per core)."""
    if num_threads:
        from executorch.extension.pybindings import portable_lib
        portable_lib._unsafe_reset_threadpool(int(num_threads))


def load_program(path: str, num_threads: Optional[int] = None):
    """The ``forward`` method of the ExecuTorch program at ``path``."""
    try:
        from executorch.runtime import Runtime, Verification
    except ImportError:
        raise DeployError('the ExecuTorch backend needs executorch: tools/setup_env.sh installs '
                          'it (pip install --no-deps executorch==1.5.1 ...)') from None
    set_threads(num_threads)
    try:
        program = Runtime.get().load_program(path, verification=Verification.Minimal)
        return program.load_method('forward')
    except Exception as err:  # the runtime's RuntimeError and friends
        raise DeployError(f'{path} is not an ExecuTorch program the runtime can load: '
                          f'{first_line(err)}') from None


class Model:
    """An ExecuTorch export folder loaded: ``model(image)`` gives the
    network's outputs (name -> array) for one ``3 x H x W`` float32 image."""

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        self.folder = app_folder(path, 'executorch')
        self.meta = read_app_metadata(self.folder, 'executorch', APP_FAMILIES)
        if 'roi_head' in self.meta:
            raise DeployError(f'{path}: ExecuTorch exports of two-stage detectors are not '
                              'supported')
        self.method = load_program(osp.join(self.folder, PROGRAM_FILE), num_threads)
        self.input_shape = (1, 3, *self.meta['input_size'])

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        import torch
        batch = np.ascontiguousarray(image, dtype=np.float32)[None]
        if batch.shape != self.input_shape:
            raise DeployError(f'{self.folder} takes a {self.input_shape} input, got '
                              f'{batch.shape}')
        outputs = self.method.execute([torch.from_numpy(batch)])
        return {name: outputs[index].numpy() for name, index in self.meta['outputs'].items()}
