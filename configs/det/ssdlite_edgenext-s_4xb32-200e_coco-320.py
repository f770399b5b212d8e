# SSDLite with an EdgeNeXt-S backbone on COCO 2017 at 320x320: the EdgeNeXt paper's detector
# (27.9 mAP on val2017), trained and evaluated with MobileViT's recipe of apple/ml-cvnets
# cvnets-v0.1 (config/detection/ssd_mobilevit_small_320.yaml). Every setting, its source and
# where we differ on purpose: docs/protocol.md.
#
#   bash tools/dist_train.sh configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py 4
_base_ = "mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py"

custom_imports = dict(
    imports=["edgenext_dense", "edgenext_dense.datasets.cvnets_transforms"],
    allow_failed_imports=False,
)

# The ImageNet-1k EdgeNeXt-S classifier (any public checkpoint layout loads).
checkpoint = "checkpoints/edgenext_small.pth"
data_root = "data/coco/"
input_size = 320
backbone_channels = (160, 304)  # EdgeNeXt-S stages 3 and 4 (strides 16 and 32)

model = dict(
    # ImageNet mean/std in RGB, as EdgeNeXt was pretrained (cvnets fed BGR / 255: protocol.md).
    data_preprocessor=dict(
        type="DetDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
    ),
    backbone=dict(
        _delete_=True,
        type="edgenext_dense.EdgeNeXt",
        arch="small",
        out_indices=(2, 3),
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint),
    ),
    neck=dict(
        _delete_=True,
        type="SSDLiteNeck",
        in_channels=backbone_channels,
        extra_channels=(256, 128, 128),
        pool_channels=64,
        norm_cfg=dict(type="BN"),
        act_cfg=dict(type="ReLU"),
    ),
    bbox_head=dict(
        _delete_=True,
        type="SSDLiteHead",
        num_classes=80,
        in_channels=(*backbone_channels, 256, 128, 128, 64),
        proj_channels=(512, 256, 256, 128, 128, 64),
        kernel_sizes=(3, 3, 3, 3, 3, 1),
        norm_cfg=dict(type="BN"),
        act_cfg=dict(type="ReLU"),
        anchor_generator=dict(
            type="SSDLiteAnchorGenerator",
            ratios=((2, 3), (2, 3), (2, 3), (2, 3), (2, 3), (2,)),
            min_ratio=0.1,
            max_ratio=1.05,
            input_size=input_size,
        ),
        bbox_coder=dict(
            type="DeltaXYWHBBoxCoder",
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
    ),
    # The base's training settings are cvnets': MaxIoUAssigner at 0.5 (every ground truth also
    # keeps its best prior), 3:1 hard negative mining, smooth L1 with beta 1.
    train_cfg=dict(
        assigner=dict(
            type="MaxIoUAssigner",
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.0,
            ignore_iof_thr=-1,
            gt_max_assign_all=False,
        ),
        smoothl1_beta=1.0,
        neg_pos_ratio=3,
    ),
    # cvnets: per class, score > 0.05, NMS at 0.5, the best 200; no pre-NMS or per-image cap
    # (these two bounds never bind: <= 19 classes pass 0.05 per prior, <= 80 x 200 remain).
    test_cfg=dict(
        nms_pre=2400 * 19,
        nms=dict(type="nms", iou_threshold=0.5),
        min_bbox_size=-1,
        score_thr=0.05,
        max_per_class=200,
        max_per_img=80 * 200,
    ),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="CvnetsSSDRandomCrop"),
    dict(type="CvnetsPhotoMetricDistortion"),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Resize", scale=(input_size, input_size), keep_ratio=False),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(input_size, input_size), keep_ratio=False),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(
        type="PackDetInputs",
        meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
    ),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type="CocoDataset",
        data_root=data_root,
        ann_file="annotations/instances_train2017.json",
        data_prefix=dict(img="train2017/"),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root=data_root,
        ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="val2017/"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
# pycocotools' own maxDets (1, 10, 100), as cvnets scored: mmdet's (100, 300, 1000) would
# score mAP_50/75/s/m/l at 1000 detections per image and class.
val_evaluator = dict(
    ann_file=data_root + "annotations/instances_val2017.json", proposal_nums=(1, 10, 100)
)
test_evaluator = val_evaluator
# COCO train2017 holds a few zero-height boxes (cvnets drops them too): warn, do not stop
data_check = dict(on_error="warn")

max_epochs = 200
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=5)

base_lr = 9e-4
optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=base_lr, betas=(0.9, 0.999), weight_decay=0.01),
)
param_scheduler = [
    # cvnets' warm-up: 9e-5 + i * (9e-4 - 9e-5) / 500 at iteration i, the full rate from 500 on
    # (mmengine's LinearLR reaches end_factor at step end - 1)
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=501),
    dict(
        type="CosineAnnealingLR",
        T_max=max_epochs,
        eta_min=1e-6,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    ),
]

# EMA of weights and BN statistics; validation scores the averaged and the raw weights.
custom_hooks = [
    dict(type="NumClassCheckHook"),
    dict(type="CheckInvalidLossHook", interval=50, priority="VERY_LOW"),
    dict(
        type="edgenext_dense.RawAndEMAEvalHook",
        ema_type="ExponentialMovingAverage",
        momentum=0.0005,
        update_buffers=True,
        priority=49,
    ),
]

# The BN layers of the neck and head become SyncBN when launched distributed (the Runner
# applies `sync_bn` only when launcher != 'none').
sync_bn = "torch"

default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", interval=5, max_keep_ckpts=3, save_best="auto")
)

# The recipe's total batch is 128 = 4 GPUs x 32; the Runner scales the learning rate linearly
# for any other total (GPUs x batch_size).
auto_scale_lr = dict(enable=True, base_batch_size=128)
