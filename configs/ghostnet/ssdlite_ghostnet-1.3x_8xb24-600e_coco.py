# SSDLite on GhostNet-1.3x, PaddleDetection's SSDLite-GhostNet width (23.3 COCO
# mAP there): the 1.0x config with the 1.3x channels (144 at stride 16, 1248
# from the final conv). No ImageNet weights are published for GhostNet-1.3x
# (V1): train your own, or set init_cfg=None to train from scratch.
_base_ = './ssdlite_ghostnet-1.0x_8xb24-600e_coco.py'

pretrained = 'checkpoints/ghostnet-1.3x_imagenet_mmdet.pth'

model = dict(
    backbone=dict(widen_factor=1.3, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=(144, 1248), out_channels=(144, 1248, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(144, 1248, 512, 256, 256, 128)))
