# LiteGFL on GhostNetV3-1.0x (V2's network with DFC attention, trained with
# re-parameterisation branches). Data, schedule and head as
# ./litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py. Its deployed graph
# is V2's, larger than V1's by the DFC attention; for V3's branches on V1's
# network see ./litegfl_ghostnet-1.0x-rep_ghostpan_1xb8-1.5k_shapes.py.
_base_ = './litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py'

model = dict(backbone=dict(type='GhostNetV3'))
