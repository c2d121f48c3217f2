# The main job: RetinaNet + GhostNet-1.0x + FPN on GhostShapes, the built-in
# synthetic dataset, from scratch on 2 CPU cores (results: README.md).
#
#   python tools/train.py configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py
_base_ = [
    '../_base_/models/retinanet_ghostnet-1.0x_fpn.py',
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

model = dict(
    # NHWC layout: faster on CPUs.
    backbone=dict(channels_last=True),
    bbox_head=dict(num_classes=5))
