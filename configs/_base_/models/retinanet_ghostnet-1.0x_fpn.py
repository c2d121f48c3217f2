# RetinaNet + GhostNet-1.0x + FPN sized for training from scratch on CPUs:
# MMDetection's RetinaNet with a 64-channel FPN and head of 2 stacked convs
# (the standard 256 channels and 4 convs took 2.5 s per iteration at 192x192
# on 2 cores, and its loss diverged from scratch).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNet',
        widen_factor=1.0,
        out_indices=(4, 6, 8),  # last block at stride 8, 16, 32
        norm_cfg=dict(type='BN', requires_grad=True),
        # From scratch: the BN layers learn their statistics.
        norm_eval=False,
        init_cfg=None),
    # GhostNet.get_out_channels(1.0, (4, 6, 8)); no C2 input, so start_level=0.
    neck=dict(in_channels=[40, 112, 160], start_level=0, out_channels=64),
    bbox_head=dict(
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # GroupNorm in the head speeds up learning from scratch (as in FCOS
        # and ATSS heads).
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # Anchors of 16-25 px at stride 8 up to 128-203 px at stride 64 (COCO's
        # start at 32 px), for objects of 8-128 px.
        anchor_generator=dict(octave_base_scale=2),
        # Boxes learnt with a GIoU loss on decoded boxes (as in ATSS and GFL):
        # scale-invariant, so 8 px objects weigh like 128 px ones.
        reg_decoded_bbox=True,
        loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=2.0)))
