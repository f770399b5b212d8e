# DeepLabv3 with EdgeNeXt-S on Pascal VOC 2012 + SBD only (10,582 training images), 512x512:
# the paper's model and MobileViT's cvnets-v0.1 recipe without its COCO images (the paper's
# config, with them: deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512.py). Every setting, its
# source and where we differ on purpose: docs/protocol.md.
#
# Data: data/VOCdevkit/VOC2012 with SegmentationClassAug/ and ImageSets/Segmentation/aug.txt
# written by tools/dataset_converters/voc_aug.py.
_base_ = [
    "mmseg::_base_/datasets/pascal_voc12.py",
    "mmseg::_base_/default_runtime.py",
]
custom_imports = dict(
    imports=[
        "edgenext_dense",
        "edgenext_dense.datasets.seg_transforms",
        "edgenext_dense.datasets.cvnets_transforms",
    ],
    allow_failed_imports=False,
)

# The ImageNet-1k classifier the backbone starts from (any public EdgeNeXt layout loads).
checkpoint = "checkpoints/edgenext_small.pth"
crop_size = (512, 512)
num_classes = 21

# SyncBN in the head; mmengine's Runner turns it into BN when not distributed.
norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[123.675, 116.28, 103.53],  # ImageNet, RGB
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size=crop_size,
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type="edgenext_dense.EdgeNeXt",
        arch="small",
        out_indices=(3,),
        output_stride=16,  # stage 4 dilated, not downsampled
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint),
    ),
    # cvnets' ASPP rates (6/12/18) and dropouts (0.1) are CvnetsASPPHead's defaults
    decode_head=dict(
        type="CvnetsASPPHead",
        in_channels=304,
        channels=128,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        # averaged over the labelled pixels, as torch's (and cvnets') cross entropy
        loss_decode=dict(type="CrossEntropyLoss", avg_non_ignore=True),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="CvnetsRandomResizeCrop", crop_size=crop_size, min_size=256, max_size=1024),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
# cvnets' evaluation: the image resized to 512x512 whatever its aspect, one scale, no flip; the
# logits go back to the original size, where the ground truth stays.
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=crop_size, keep_ratio=False),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="PackSegInputs"),
]
# One dataset of the 10,582 VOC-train + SBD ids (aug.txt), not mmseg's train + aug concat.
train_dataloader = dict(
    batch_size=32,
    drop_last=True,  # a batch of one would stop BN in the image-pooling branch
    sampler=dict(type="DefaultSampler"),  # epochs, not mmseg's infinite iterations
    dataset=dict(
        data_prefix=dict(seg_map_path="SegmentationClassAug"),
        ann_file="ImageSets/Segmentation/aug.txt",
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# AdamW (weight decay on every parameter, as cvnets' no_decay_bn_filter_bias=false),
# head learning rate x10 (cvnets' lr_multiplier).
optim_wrapper = dict(
    optimizer=dict(type="AdamW", lr=9e-4, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            "decode_head": dict(lr_mult=10.0),
            "auxiliary_head": dict(lr_mult=10.0),
        }
    ),
)
# 500 iterations from 9e-5 up to 9e-4, then cosine down to 1e-6, stepped once per epoch (x10
# in the head: cvnets scales every group's value by its multiplier).
param_scheduler = [
    # cvnets' warm-up: 9e-5 + i * (9e-4 - 9e-5) / 500 at iteration i, the full rate from 500 on
    # (mmengine's LinearLR reaches end_factor at step end - 1)
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=501),
    dict(type="CosineAnnealingLR", T_max=50, eta_min_ratio=1e-6 / 9e-4, end=50),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=50, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
# the Runner adds its other default hooks (timer, param_scheduler, sampler_seed)
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=20),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=2, save_best="mIoU"),
    visualization=dict(type="SegVisualizationHook"),
)
log_processor = dict(by_epoch=True)
# EMA of weights and BN statistics; validation scores the averaged and the raw weights. 0.0025,
# not cvnets' 0.0005: this run's ~4,100 iterations are too few for it (docs/protocol.md, EMA).
custom_hooks = [
    dict(
        type="edgenext_dense.RawAndEMAEvalHook",
        momentum=0.0025,
        update_buffers=True,
        priority="ABOVE_NORMAL",
    ),
]
# 4 GPUs x 32; the Runner scales the learning rate linearly for other totals, as for detection.
auto_scale_lr = dict(enable=True, base_batch_size=128)
