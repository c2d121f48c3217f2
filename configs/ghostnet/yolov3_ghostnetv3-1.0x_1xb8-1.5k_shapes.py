# The GhostShapes recipe of yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py with GhostNetV3-1.0x as the backbone
# (from scratch, same data, schedule, seed), for the comparison in the README.
#
#   python tools/train.py configs/ghostnet/yolov3_ghostnetv3-1.0x_1xb8-1.5k_shapes.py
_base_ = './yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py'

model = dict(backbone=dict(type='GhostNetV3'))
