# The GhostShapes recipe of retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py with GhostNetV3-1.0x as the backbone
# (from scratch, same data, schedule, seed), for the comparison in the README.
#
#   python tools/train.py configs/ghostnet/retinanet_ghostnetv3-1.0x_fpn_1xb8-1.5k_shapes.py
_base_ = './retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py'

model = dict(backbone=dict(type='GhostNetV3'))
