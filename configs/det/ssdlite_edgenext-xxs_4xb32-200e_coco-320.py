# SSDLite with an EdgeNeXt-XX-Small backbone on COCO 2017 at 320x320: the EdgeNeXt-S recipe
# (ssdlite_edgenext-s_4xb32-200e_coco-320.py) with the xx_small backbone's stages 3 and 4.
_base_ = "./ssdlite_edgenext-s_4xb32-200e_coco-320.py"

# The ImageNet-1k EdgeNeXt-XX-Small classifier (any public checkpoint layout loads).
checkpoint = "checkpoints/edgenext_xxsmall.pth"
backbone_channels = (88, 168)  # EdgeNeXt-XX-Small stages 3 and 4 (strides 16 and 32)

model = dict(
    backbone=dict(arch="xx_small", init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    neck=dict(in_channels=backbone_channels),
    bbox_head=dict(in_channels=(*backbone_channels, 256, 128, 128, 64)),
)
