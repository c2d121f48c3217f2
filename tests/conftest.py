import pytest
import torch

import ghostnet_mmdet  # noqa: F401  (registers GhostNet)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def randomize_norm_stats(model: torch.nn.Module) -> None:
    """Give BN layers non-trivial statistics, so eval-mode comparisons test
    that running stats land in the right place."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
