"""Helpers of the backbone tests: timm's networks as the reference, ours
with their weights, BatchNorm statistics worth comparing."""
import torch

# timm's GhostNetV2/V3 models by (version, width).
TIMM = {('v2', 1.0): 'ghostnetv2_100', ('v2', 1.3): 'ghostnetv2_130',
        ('v2', 1.6): 'ghostnetv2_160', ('v3', 0.5): 'ghostnetv3_050',
        ('v3', 1.0): 'ghostnetv3_100', ('v3', 1.3): 'ghostnetv3_130'}
TAPS = (4, 6, 8, 9)


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
    from ghostnet_mmdet.models import GHOSTNET_VERSIONS
    from ghostnet_mmdet.utils import official_to_mmdet
    model = GHOSTNET_VERSIONS[version](widen_factor=width, out_indices=TAPS, **kwargs)
    model.load_state_dict(official_to_mmdet(reference.state_dict()), strict=True)
    return model.eval()
