# DeepLabv3 with EdgeNeXt-XXS on Pascal VOC 2012 + SBD, the EdgeNeXt-S recipe with the
# smallest backbone (168 channels into the 128-channel cvnets ASPP head).
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

checkpoint = "checkpoints/edgenext_xxsmall.pth"
model = dict(
    backbone=dict(arch="xx_small", init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    decode_head=dict(in_channels=168),
)
