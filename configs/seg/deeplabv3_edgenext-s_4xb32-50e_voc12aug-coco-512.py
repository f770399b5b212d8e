# DeepLabv3 with EdgeNeXt-S trained on Pascal VOC 2012 + SBD plus the COCO train2017 images
# that hold VOC classes, mapped to the 20 VOC classes (as cvnets-v0.1's MobileViT config did
# with use_coco_data). The COCO masks come from
#   python tools/dataset_converters/coco_to_voc_seg.py data/coco --split train2017
# which writes data/coco/voc_seg/train2017/*.png and data/coco/voc_seg/train2017.txt.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

coco_root = "data/coco"
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type="ConcatDataset",
        datasets=[
            {{_base_.train_dataloader.dataset}},
            dict(
                type="PascalVOCDataset",
                data_root=coco_root,
                data_prefix=dict(img_path="train2017", seg_map_path="voc_seg/train2017"),
                ann_file="voc_seg/train2017.txt",
                pipeline={{_base_.train_pipeline}},
            ),
        ],
    )
)
