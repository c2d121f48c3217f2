import pytest
import torch

import ghostnet_mmdet  # noqa: F401  (registers GhostNet)

from .detection_utils import REPO, run_tool, write_tiny_config


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


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """The main job in miniature, trained once for the whole session with
    tools/train.py: (folder, config, data_root, work_dir, log)."""
    folder = tmp_path_factory.mktemp('e2e')
    config, data_root = write_tiny_config(folder)
    work_dir = folder / 'work'
    result = run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', work_dir, cwd=folder)
    return folder, config, data_root, work_dir, result.stdout + result.stderr
