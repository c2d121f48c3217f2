# The documented entry point: RetinaNet + GhostNet-1.0x + FPN on COCO 2017.
#   python tools/train.py configs/retinanet_ghostnet.py
# See configs/ghostnet/README.md for the other detectors and widths.
_base_ = './ghostnet/retinanet_ghostnet-1.0x_fpn_1x_coco.py'
