# DeepLabv3 with EdgeNeXt-B on Pascal VOC 2012 + SBD, the EdgeNeXt-S recipe with the base
# backbone (584 channels into the 128-channel cvnets ASPP head).
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

checkpoint = "checkpoints/edgenext_base.pth"
model = dict(
    backbone=dict(arch="base", init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    decode_head=dict(in_channels=584),
)
