import pytest
import timm
import torch

from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils.complexity import conv_linear_macs, imagenet_head_macs


def test_conv_linear_macs_of_a_known_network():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),  # 8x8 out: 64*8*27
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),  # 64*8*9
        torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10))  # 512*10
    counts = conv_linear_macs(net, torch.randn(2, 3, 16, 16))
    assert counts == {'conv': 64 * 8 * 27 + 64 * 8 * 9, 'linear': 5120,
                      'total': 64 * 8 * 36 + 5120}


def test_paper_flops_of_the_1x_network():
    """The paper's 141M FLOPs are conv + linear MACs at 224x224 with the
    ImageNet head; timm's identical network counts 141.15M."""
    x = torch.randn(1, 3, 224, 224)
    ours = GhostNet(out_indices=(9, ))
    body = conv_linear_macs(ours, x)['total']
    total = body + imagenet_head_macs(ours.out_channels[-1])
    reference = conv_linear_macs(timm.create_model('ghostnet_100'), x)['total']
    assert reference == pytest.approx(141.15e6, rel=1e-3)
    assert total == pytest.approx(reference, rel=0.01)
    assert total == pytest.approx(141e6, rel=0.01)
    # The body of the network (convolutions and SE): 137.14M + 1.50M.
    assert body == pytest.approx(138.64e6, rel=2e-3)


def test_backbone_complexity_matches_timm():
    """get_flops.py --backbone's figures: the paper's setting."""
    from ghostnet_mmdet.apis.complexity import backbone_complexity
    from ghostnet_mmdet.utils.complexity import mmengine_flops
    reference = timm.create_model('ghostnet_100').eval()
    ours = backbone_complexity(1.0)
    assert ours['params'] == sum(p.numel() for p in reference.parameters())
    assert ours['macs'] == pytest.approx(141.15e6, rel=1e-3)
    # MMEngine's count for timm's network (148.3M); ours omits only the
    # global pool of the head.
    assert ours['flops'] == pytest.approx(mmengine_flops(reference, (224, 224)), rel=1e-3)
