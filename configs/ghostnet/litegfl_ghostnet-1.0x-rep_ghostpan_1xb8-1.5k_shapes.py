# LiteGFL-GhostNet trained with GhostNetV3's re-parameterisation on V1's
# network: every backbone conv trains as three conv + norm branches, a
# scale branch and an identity norm (num_branches=3), merged into one conv
# for deployment (switch_to_deploy; the exporters do it), so the deployed
# detector is LiteGFL-GhostNet-1.0x itself, operator for operator. Data,
# schedule and head as ./litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py.
_base_ = './litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py'

model = dict(backbone=dict(num_branches=3))
