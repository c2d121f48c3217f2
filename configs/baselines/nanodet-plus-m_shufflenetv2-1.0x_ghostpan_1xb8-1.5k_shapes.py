# Peer for the GhostShapes comparison: NanoDet-Plus-m's architecture
# (ShuffleNetV2-1.0x tapped at strides 8, 16, 32 with 116, 232 and 464
# channels, a 96-channel Ghost-PAN with one extra level, a GFL head of two
# 5x5 depthwise-separable convs per level, reg_max 7) with the data,
# schedule, input size, assigner and losses of
# ../ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py: only the
# backbone differs. The backbone is mmpretrain's ShuffleNetV2 (from
# scratch; ReLU, where NanoDet's own copy uses LeakyReLU). NanoDet-Plus's
# training-only assign guidance head is left out, as in LiteGFL: both
# detectors deploy the same neck and head.
_base_ = '../ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py'

custom_imports = dict(imports=['ghostnet_mmdet', 'mmpretrain.models'],
                      allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(0, 1, 2),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[116, 232, 464]))
