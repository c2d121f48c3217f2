# LiteGFL (GhostPAN + LiteGFLHead, the NanoDet-Plus-class detector) on
# GhostNet-1.0x, GhostShapes, from scratch on 2 CPU cores; baseline with
# MobileNetV2 on the same neck and head:
# ../baselines/litegfl_mobilenetv2_ghostpan_1xb8-1.5k_shapes.py.
_base_ = [
    '../_base_/models/litegfl_ghostnet-1.0x_ghostpan.py',
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(channels_last=True),
    bbox_head=dict(num_classes=5),
    # GFL's own ATSS assignment (top 9 priors per level by centre distance)
    # instead of NanoDet-Plus's dynamic soft labels: more accurate on
    # GhostShapes' small objects, and the inference graph is the same.
    train_cfg=dict(assigner=dict(_delete_=True, type='ATSSAssigner', topk=9)))
# No weight decay on norms and biases (NanoDet-Plus's recipe).
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
