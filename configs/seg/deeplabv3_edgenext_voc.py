# The paper's segmenter under its short name: DeepLabv3 + EdgeNeXt-S trained on VOC + SBD + COCO
# (80.2 mIoU on VOC val reported). All settings are in the -s ...-coco-512.py config.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512.py"
