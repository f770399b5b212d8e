# The paper's segmenter (80.2 mIoU on VOC val): DeepLabv3 with EdgeNeXt-S trained, as
# cvnets-v0.1's MobileViT config (use_coco_data: true), on Pascal VOC 2012 + SBD plus the COCO
# train2017 images relabelled to the 20 VOC classes by
#   python tools/dataset_converters/coco_to_voc_seg.py data/coco --split train2017
# (data/coco/voc_seg/train2017/*.png and train2017.txt). Settings and sources: docs/protocol.md.
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

# cvnets' EMA momentum, for this run's length (the VOC-only base says why it differs there).
custom_hooks = [
    dict(
        type="edgenext_dense.RawAndEMAEvalHook",
        momentum=0.0005,
        update_buffers=True,
        priority="ABOVE_NORMAL",
    ),
]
