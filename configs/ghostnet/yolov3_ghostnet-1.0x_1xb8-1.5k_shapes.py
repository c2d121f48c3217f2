# YOLOv3 head on GhostNet-1.0x on GhostShapes, the built-in synthetic
# dataset, sized for 2 CPU cores. Inherits the COCO config and changes data,
# classes, image size, anchors and schedule (../_base_/datasets/ghost_shapes.py).
#
#   python tools/train.py configs/ghostnet/yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py
_base_ = ['./yolov3_ghostnet-1.0x_8xb24-ms-416-300e_coco.py', '../_base_/datasets/ghost_shapes.py']

model = dict(
    # No ImageNet weights here: trained from scratch, BN layers learn.
    backbone=dict(init_cfg=None, channels_last=True),
    bbox_head=dict(
        num_classes=5,
        # Objects are 8-128 px (near-square boxes) instead of COCO's sizes.
        anchor_generator=dict(base_sizes=[[(64, 64), (90, 90), (128, 128)],
                                          [(28, 28), (36, 36), (48, 48)],
                                          [(8, 8), (12, 12), (18, 18)]])))

# 2-core CPU: fixed 256x256 input and flips only (the COCO config's Expand,
# MinIoURandomCrop, multi-scale resize and photometric distortion cost CPU
# time that this short schedule cannot repay).
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
