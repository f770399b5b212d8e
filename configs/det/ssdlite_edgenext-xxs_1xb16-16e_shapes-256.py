# The no-download demo: SSDLite + EdgeNeXt-XXS on the generated shapes dataset
# (edgenext_dense.datasets.make_coco_shapes), sized to train on a 2-core CPU in a few minutes.
# Same model as ssdlite_edgenext-xxs_4xb32-200e_coco-320.py with 5 classes and a 256x256 input.
# What differs from the COCO recipe, and why (the runs behind each choice: docs/benchmarks.md):
# - the backbone starts from tools/pretrain_shapes.py's shape-crop classifier, the demo's
#   stand-in for the ImageNet checkpoint: from scratch it never learns;
# - the head's convs start from Normal(0, 0.001) as mmdet's SSD heads, not cvnets' Xavier;
# - priors from 0.1875 to 1.39 of the input instead of 0.1 to 1.05: the generated shapes are
#   15-60% of the image (mmdet's SSDLite sizes);
# - 256x256 input, flips only, AdamW 6e-3 with cosine decay over 16 epochs, no EMA.
#
#   python tools/dataset_converters/make_shapes_dataset.py det data/shapes_coco
#   python tools/pretrain_shapes.py --out checkpoints/edgenext_xx_small_shapes.pth
#   python tools/train.py configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py
#
# The dataset root is `data_root` (override all its uses with --cfg-options, see below).
_base_ = "./ssdlite_edgenext-xxs_4xb32-200e_coco-320.py"

data_root = "data/shapes_coco/"
# edgenext_dense.datasets.SHAPE_CLASSES, category ids 1..5
classes = ("circle", "rectangle", "triangle", "star", "cross")
metainfo = dict(classes=classes)
input_size = 256
# What tools/dataset_converters/make_shapes_dataset.py (make_coco_shapes) should write.
shapes_dataset = dict(num_train=800, num_val=100, img_size=320, seed=0)

# what tools/pretrain_shapes.py writes by default; the missing-file message quotes the command
checkpoint = "checkpoints/edgenext_xx_small_shapes.pth"
pretrain_command = f"python tools/pretrain_shapes.py --out {checkpoint}"

model = dict(
    backbone=dict(init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    bbox_head=dict(
        num_classes=len(classes),
        anchor_generator=dict(
            type="SSDLiteAnchorGenerator", input_size=input_size, min_ratio=0.1875, max_ratio=1.39
        ),
        init_cfg=dict(type="Normal", layer="Conv2d", std=0.001),
    ),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(input_size, input_size), keep_ratio=False),
    dict(type="RandomFlip", prob=0.5),
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
    batch_size=16,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val2017.json")
test_evaluator = val_evaluator
# generated data holds no bad annotation: any is a bug to stop on (COCO's configs only warn)
data_check = dict(on_error="raise")

max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
base_lr = 6e-3
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.05))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=50),
    dict(
        type="CosineAnnealingLR",
        T_max=max_epochs,
        eta_min=4e-5,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
# no EMA: a 0.0005 average needs thousands of iterations to catch up
custom_hooks = [dict(type="NumClassCheckHook")]
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(type="CheckpointHook", interval=max_epochs, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(window_size=10)
randomness = dict(seed=0)
