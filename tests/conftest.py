import os

import pytest
import torch
from filelock import FileLock

import ghostnet_mmdet  # noqa: F401  (registers GhostNet)

from .detection_utils import REPO, run_tool, tiny_config_paths, write_tiny_config

# timm's GhostNetV2/V3 models by (version, width).
TIMM = {('v2', 1.0): 'ghostnetv2_100', ('v2', 1.3): 'ghostnetv2_130',
        ('v2', 1.6): 'ghostnetv2_160', ('v3', 0.5): 'ghostnetv3_050',
        ('v3', 1.0): 'ghostnetv3_100', ('v3', 1.3): 'ghostnetv3_130'}
TAPS = (4, 6, 8, 9)


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


def timm_taps(model, x, taps):
    """timm's GhostNet (any version) at our output indices: the last block
    of the stages in ``taps`` (9: the final conv, ``blocks.9``)."""
    features = []
    x = model.act1(model.bn1(model.conv_stem(x)))
    for index, stage in enumerate(model.blocks):
        x = stage(x)
        if index in taps:
            features.append(x)
    return features


def randomize_norm_stats(model: torch.nn.Module) -> None:
    """Give BN layers non-trivial statistics, so eval-mode comparisons test
    that running stats land in the right place."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def timm_model(version, width):
    """timm's network of ``version`` and ``width``, random weights, BN
    statistics randomised, in eval mode."""
    import timm
    model = timm.create_model(TIMM[(version, width)], pretrained=False)
    randomize_norm_stats(model)
    return model.eval()


def ours_from_timm(version, width, reference, **kwargs):
    """Our network of ``version`` and ``width`` with ``reference``'s weights
    (converted by our converter), taps :data:`TAPS`, in eval mode."""
    from ghostnet_mmdet.models import GhostNet, GhostNetV2, GhostNetV3
    from ghostnet_mmdet.utils import official_to_mmdet
    classes = {'v1': GhostNet, 'v2': GhostNetV2, 'v3': GhostNetV3}
    model = classes[version](widen_factor=width, out_indices=TAPS, **kwargs)
    model.load_state_dict(official_to_mmdet(reference.state_dict()), strict=True)
    return model.eval()


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
