# The default segmenter: DeepLabv3 with EdgeNeXt-S on Pascal VOC 2012 + SBD (the paper's
# model, 128-channel ASPP). Short name of deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"
