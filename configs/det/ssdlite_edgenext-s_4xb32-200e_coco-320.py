# SSDLite with an EdgeNeXt-S backbone on COCO 2017 at 320x320: the EdgeNeXt paper's detector
# (27.9 mAP on val2017), trained and evaluated with MobileViT's recipe of apple/ml-cvnets
# cvnets-v0.1 (config/detection/ssd_mobilevit_small_320.yaml). Every setting, its source and
# where we differ on purpose: docs/protocol.md.
#
#   bash tools/dist_train.sh configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py 4
_base_ = [
    "mmdet::_base_/datasets/coco_detection.py",
    "mmdet::_base_/schedules/schedule_1x.py",
    "mmdet::_base_/default_runtime.py",
]

custom_imports = dict(
    imports=["edgenext_dense", "edgenext_dense.datasets.cvnets_transforms"],
    allow_failed_imports=False,
)

# The ImageNet-1k EdgeNeXt-S classifier (any public checkpoint layout loads).
checkpoint = "checkpoints/edgenext_small.pth"
input_size = 320

# ImageNet mean/std in RGB, as EdgeNeXt was pretrained (cvnets fed BGR / 255: protocol.md).
data_preprocessor = dict(
    type="DetDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
)
# The neck's and head's defaults are cvnets' SSDLite on EdgeNeXt-S: extra levels 256/128/128 and
# a pooled 64, projections [512, 256, 256, 128, 128, 64], BN + ReLU, cvnets' priors and variances.
model = dict(
    type="SingleStageDetector",
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type="edgenext_dense.EdgeNeXt",
        arch="small",
        out_indices=(2, 3),
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint),
    ),
    neck=dict(type="SSDLiteNeck"),
    bbox_head=dict(type="SSDLiteHead", num_classes=80),
    # cvnets: MaxIoUAssigner at 0.5 (every ground truth also keeps its best prior), 3:1 hard
    # negative mining, smooth L1 with beta 1.
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
        allowed_border=-1,
        pos_weight=-1,
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
env_cfg = dict(cudnn_benchmark=True)  # fixed 320x320 inputs

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
# every training image with a box (min_size=0); no aspect-ratio grouping at a fixed size
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    batch_sampler=None,
    dataset=dict(filter_cfg=dict(min_size=0), pipeline=train_pipeline),
)
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# pycocotools' own maxDets (1, 10, 100), as cvnets scored: mmdet's (100, 300, 1000) would
# score mAP_50/75/s/m/l at 1000 detections per image and class.
val_evaluator = dict(proposal_nums=(1, 10, 100))
test_evaluator = val_evaluator
# COCO train2017 holds a few zero-height boxes (cvnets drops them too): warn, do not stop
data_check = dict(on_error="warn")

max_epochs = 200
train_cfg = dict(max_epochs=max_epochs, val_interval=5)

base_lr = 9e-4
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type="AdamW", lr=base_lr, weight_decay=0.01),
)
param_scheduler = [
    # cvnets' warm-up: 9e-5 + i * (9e-4 - 9e-5) / 500 at iteration i, the full rate from 500 on
    # (mmengine's LinearLR reaches end_factor at step end - 1)
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=501),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-6, end=max_epochs),
]

# EMA of weights and BN statistics; validation scores the averaged and the raw weights.
custom_hooks = [
    dict(type="NumClassCheckHook"),
    dict(type="CheckInvalidLossHook", interval=50, priority="VERY_LOW"),
    dict(
        type="edgenext_dense.RawAndEMAEvalHook",
        momentum=0.0005,
        update_buffers=True,
        priority=49,
    ),
]

# The BN layers of the neck and head become SyncBN when launched distributed (the Runner
# applies `sync_bn` only when launcher != 'none').
sync_bn = "torch"

default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3, save_best="auto"))

# The recipe's total batch is 128 = 4 GPUs x 32; the Runner scales the learning rate linearly
# for any other total (GPUs x batch_size).
auto_scale_lr = dict(enable=True, base_batch_size=128)
