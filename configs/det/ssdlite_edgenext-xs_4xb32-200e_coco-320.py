# SSDLite with an EdgeNeXt-X-Small backbone on COCO 2017 at 320x320: the EdgeNeXt-S recipe
# (ssdlite_edgenext-s_4xb32-200e_coco-320.py) with the x_small backbone's stages 3 and 4.
_base_ = "./ssdlite_edgenext-s_4xb32-200e_coco-320.py"

# The ImageNet-1k EdgeNeXt-X-Small classifier (any public checkpoint layout loads).
checkpoint = "checkpoints/edgenext_xsmall.pth"
backbone_channels = (100, 192)  # EdgeNeXt-X-Small stages 3 and 4 (strides 16 and 32)

model = dict(
    backbone=dict(arch="x_small", init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    neck=dict(in_channels=backbone_channels),
    bbox_head=dict(in_channels=(*backbone_channels, 256, 128, 128, 64)),
)
