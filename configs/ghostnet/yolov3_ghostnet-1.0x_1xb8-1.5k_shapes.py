# YOLOv3 (MMDetection's 96-channel MobileNetV2 head) on GhostNet-1.0x,
# GhostShapes, from scratch on 2 CPU cores.
_base_ = [
    '../_base_/models/yolov3_ghostnet-1.0x.py',
    '../_base_/datasets/ghost_shapes.py',
    '../_base_/schedules/schedule_1.5k.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(channels_last=True), bbox_head=dict(num_classes=5))
find_unused_parameters = True
