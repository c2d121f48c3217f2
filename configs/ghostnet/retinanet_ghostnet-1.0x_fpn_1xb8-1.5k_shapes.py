# RetinaNet + GhostNet-1.0x + FPN on GhostShapes, the built-in synthetic
# dataset: trains from scratch on 2 CPU cores in about 13 minutes, evaluates
# with the COCO metric, and writes a checkpoint. The dataset (2400 train and
# 200 val images, 256x256) is drawn into data/shapes/ on first use.
#
#   python tools/train.py configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py
#
# Inherits the COCO config and changes data, classes, image size and
# schedule (../_base_/datasets/ghost_shapes.py), plus what a 2-core CPU needs
# (said where it happens).
_base_ = ['./retinanet_ghostnet-1.0x_fpn_1x_coco.py', '../_base_/datasets/ghost_shapes.py']

model = dict(
    backbone=dict(
        # No ImageNet weights here: trained from scratch, so its BN layers
        # learn their statistics.
        init_cfg=None,
        norm_eval=False,
        # 2-core CPU: NHWC layout, about 5% faster per iteration here.
        channels_last=True),
    # 2-core CPU: a 64-channel FPN and head with 2 stacked convs instead of
    # 256 channels and 4 convs (measured here: 2.5 s per iteration at 192x192
    # with the standard head, and its loss diverged from scratch).
    neck=dict(out_channels=64),
    bbox_head=dict(
        num_classes=5,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # GroupNorm in the head speeds up learning from scratch (as in FCOS
        # and ATSS heads).
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # Objects are 8-128 px: anchors of 16-25 px at stride 8 up to
        # 128-203 px at stride 64 (COCO's start at 32 px), so that large
        # objects fall on levels that come straight from the backbone.
        anchor_generator=dict(octave_base_scale=2),
        # Boxes learnt with a GIoU loss on decoded boxes (as in ATSS and
        # GFL): scale-invariant, so 8 px objects weigh like 128 px ones.
        reg_decoded_bbox=True,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    test_cfg=dict(nms_pre=1000, score_thr=0.05, max_per_img=100))

# The COCO config's names, pointed at GhostShapes (so the dumped config reads
# true even where only the dataloaders below use them).
data_root = {{_base_.shapes_data_root}}
dataset_type = 'GhostShapesDataset'
train_pipeline = {{_base_.shapes_train_pipeline}}
test_pipeline = {{_base_.shapes_test_pipeline}}
train_dataloader = {{_base_.shapes_train_dataloader}}
val_dataloader = {{_base_.shapes_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.shapes_val_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.shapes_train_cfg}}
param_scheduler = {{_base_.shapes_param_scheduler}}
default_hooks = {{_base_.shapes_default_hooks}}
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size={{_base_.shapes_batch_size}})
optim_wrapper = {{_base_.shapes_optim_wrapper}}
