# SSDLite on GhostNet-1.0x, GhostShapes, from scratch on 2 CPU cores;
# baseline: ../baselines/ssdlite_mobilenetv2_1xb8-1.5k_shapes.py.
_base_ = [
    '../_base_/models/ssdlite_ghostnet-1.0x.py',
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(channels_last=True), bbox_head=dict(num_classes=5))
env_cfg = dict(cudnn_benchmark=True)
