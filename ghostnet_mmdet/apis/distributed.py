"""Multi-process training and testing through MMEngine's launchers on
machines without CUDA.

MMEngine 0.10.7's pytorch launcher calls ``torch.cuda.set_device``
unconditionally, and ``Runner.wrap_model`` gives DistributedDataParallel
``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU model. On such a
machine :func:`prepare_cpu_distributed` starts the gloo process group itself
(``Runner.setup_env`` then skips ``init_dist``) and wraps the model with
``device_ids=None``. On machines with CUDA it does nothing: MMEngine's own
path (nccl, one GPU per process) runs unchanged.
"""
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

from .config_check import ConfigError


def prepare_cpu_distributed(cfg: Config) -> bool:
    """Make ``cfg`` (with ``cfg.launcher`` set) run distributed on CPUs.

    Returns:
        bool: Whether this process started a gloo process group.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ConfigError(
            f"--launcher {launcher} needs CUDA GPUs on this stack (MMEngine's {launcher} "
            "launcher selects a GPU per process); without a GPU, launch with torchrun: "
            'tools/dist_train.sh CONFIG NPROC (--launcher pytorch, gloo backend)')
    started = False
    if not dist.is_initialized():
        dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {}) or {}
        timeout = dist_cfg.get('timeout')
        kwargs = dict(timeout=timedelta(seconds=timeout)) if timeout else {}
        # torchrun sets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE.
        dist.init_process_group(backend='gloo', **kwargs)
        started = True
    wrapper = ConfigDict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper_type = MODEL_WRAPPERS.get(wrapper.get('type', 'MMDistributedDataParallel'))
    if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
        wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return started
