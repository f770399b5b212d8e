# DeepLabv3 with EdgeNeXt-S, ASPP at 256 channels: MobileViT's head width (cvnets'
# aspp_out_channels default). 2,593,045 head parameters instead of 1,214,613 (7.87M in all);
# the paper's 6.5M is the 128-channel default.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

model = dict(decode_head=dict(channels=256))
