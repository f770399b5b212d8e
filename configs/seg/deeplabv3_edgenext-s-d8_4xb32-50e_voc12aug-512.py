# DeepLabv3 with EdgeNeXt-S at output stride 8: stages 3 and 4 dilated, the ASPP rates doubled
# to 12/24/36 as DeepLabv3 does at stride 8 (same receptive field in image pixels). About
# 4x the head's and 2-4x the last stages' multiply-adds of the stride-16 default.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

model = dict(backbone=dict(output_stride=8), decode_head=dict(dilations=(1, 12, 24, 36)))
