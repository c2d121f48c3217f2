# RTMDet-tiny's neck and head on GhostNet-1.0x, GhostShapes, from scratch on
# 2 CPU cores; baseline: ../baselines/rtmdet_cspnext-tiny_1xb8-1.5k_shapes.py.
_base_ = [
    '../_base_/models/rtmdet-tiny_ghostnet-1.0x.py',
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(channels_last=True), bbox_head=dict(num_classes=5))
# RTMDet's recipe: no weight decay on norms and biases.
optim_wrapper = dict(
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
