import os

import pytest
import torch
from filelock import FileLock

import ghostnet_mmdet  # noqa: F401  (registers GhostNet)

from .detection_utils import REPO, run_tool, tiny_config_paths, write_tiny_config


def pytest_configure(config):
    """Under pytest-xdist, each worker's share of the cores (torch in the
    worker, and the tools it starts), so that two workers do not each run
    torch on every core."""
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ['OMP_NUM_THREADS'] = str(threads)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """The main job in miniature, trained once for the whole run with
    tools/train.py: (folder, config, data_root, work_dir, log). Under
    pytest-xdist the workers share one training: the first to ask trains
    it, the others wait for it (tests only add files to the folder, each
    under its own name)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent  # shared by the workers of this run
    folder = root / 'e2e'
    config, data_root = tiny_config_paths(folder)
    done = folder / 'train.log'
    with FileLock(str(root / 'e2e.lock')):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            write_tiny_config(folder)
            result = run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', folder / 'work',
                              cwd=folder)
            done.write_text(result.stdout + result.stderr)
    return folder, config, data_root, folder / 'work', done.read_text()
