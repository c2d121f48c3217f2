# RTMDet-tiny's neck and head on GhostNet-1.0x on GhostShapes, the built-in
# synthetic dataset, sized for 2 CPU cores: the COCO config with GhostShapes'
# data, classes, schedule and optimizer (../_base_/datasets/ghost_shapes.py),
# trained from scratch. Compare with
# ../baselines/rtmdet_cspnext-tiny_1xb8-1.5k_shapes.py (MMDetection's own
# backbone under the same recipe).
#
#   python tools/train.py configs/ghostnet/rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py
_base_ = ['./rtmdet_ghostnet-1.0x_8xb32-300e_coco.py', '../_base_/datasets/ghost_shapes.py']

model = dict(
    # No ImageNet weights here: trained from scratch, BN layers learn; NHWC
    # is about 5% faster on CPUs.
    backbone=dict(init_cfg=None, norm_eval=False, channels_last=True),
    # One process on a CPU: plain BN instead of the base's SyncBN.
    neck=dict(norm_cfg=dict(type='BN')),
    bbox_head=dict(num_classes=5, norm_cfg=dict(type='BN')))

# The COCO config's names, pointed at GhostShapes (so the dumped config reads
# true even where only the dataloaders below use them). The base's Mosaic,
# MixUp and large-scale jitter, its EMA and its pipeline switch are COCO's
# 300-epoch recipe, not this 1500-iteration one: all GhostShapes configs
# share one pipeline and schedule.
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
custom_hooks = []
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size={{_base_.shapes_batch_size}})
optim_wrapper = {{_base_.shapes_optim_wrapper}}
