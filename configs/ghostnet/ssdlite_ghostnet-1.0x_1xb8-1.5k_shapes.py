# SSDLite + GhostNet-1.0x on GhostShapes, the built-in synthetic dataset,
# sized for 2 CPU cores: the COCO config with GhostShapes' data, classes,
# schedule and optimizer (../_base_/datasets/ghost_shapes.py), trained from
# scratch. Compare with ../baselines/ssdlite_mobilenetv2_1xb8-1.5k_shapes.py.
#
#   python tools/train.py configs/ghostnet/ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py
_base_ = ['./ssdlite_ghostnet-1.0x_8xb24-600e_coco.py', '../_base_/datasets/ghost_shapes.py']

model = dict(
    # No ImageNet weights here: trained from scratch, so its BN layers learn
    # (norm_eval=False) and NHWC is about 5% faster on CPUs.
    backbone=dict(init_cfg=None, norm_eval=False, channels_last=True),
    bbox_head=dict(
        num_classes=5,
        # GhostShapes images are 256x256 with 8-128 px objects; the COCO
        # config's anchors are for 320x320 inputs and 48-320 px objects. Six
        # levels at strides 16-256 (the feature maps are 16, 8, 4, 2, 1, 1
        # wide at 256x256).
        anchor_generator=dict(
            strides=[16, 32, 64, 128, 256, 256],
            min_sizes=[16, 32, 64, 96, 128, 192],
            max_sizes=[32, 64, 96, 128, 192, 256])))

# The COCO config's names, pointed at GhostShapes (so the dumped config reads
# true even where only the dataloaders below use them).
data_root = {{_base_.shapes_data_root}}
dataset_type = 'GhostShapesDataset'
input_size = {{_base_.shapes_image_size}}
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
