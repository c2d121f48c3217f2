# GhostPAN + LiteGFLHead (the NanoDet-Plus-class detector) on GhostNet-1.0x
# on GhostShapes, the built-in synthetic dataset, sized for 2 CPU cores: the
# 320x320 COCO config with GhostShapes' data, classes, schedule and
# optimizer (../_base_/datasets/ghost_shapes.py), trained from scratch, so
# that it compares with the other *_shapes.py configs. Baseline with
# MobileNetV2 on the same neck and head:
# ../baselines/litegfl_mobilenetv2_ghostpan_1xb8-1.5k_shapes.py.
#
#   python tools/train.py configs/ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py
_base_ = ['./litegfl_ghostnet-1.0x_ghostpan_4xb96-320-300e_coco.py',
          '../_base_/datasets/ghost_shapes.py']

model = dict(
    # No ImageNet weights here: trained from scratch; NHWC is faster on CPUs.
    backbone=dict(init_cfg=None, channels_last=True),
    bbox_head=dict(num_classes=5),
    # GFL's own ATSS assignment (top 9 priors per level by centre distance)
    # instead of NanoDet-Plus's dynamic soft labels: on GhostShapes it is
    # more accurate (small objects above all) and faster to train; see
    # docs/en/lite_detector.md. The inference graph is the same.
    train_cfg=dict(assigner=dict(_delete_=True, type='ATSSAssigner', topk=9)))

# The COCO config's names, pointed at GhostShapes. Its EMA, affine and
# photometric augmentation are COCO's 300-epoch recipe, not this
# 1500-iteration one: all GhostShapes configs share one pipeline and schedule.
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
