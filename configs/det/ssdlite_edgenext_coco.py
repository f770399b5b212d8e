# The paper's detector under its short name: SSDLite + EdgeNeXt-S on COCO 2017 at 320x320
# (27.9 mAP reported). All settings are in ssdlite_edgenext-s_4xb32-200e_coco-320.py.
_base_ = "./ssdlite_edgenext-s_4xb32-200e_coco-320.py"
