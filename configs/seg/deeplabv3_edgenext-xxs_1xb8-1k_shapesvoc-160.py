# DeepLabv3 with EdgeNeXt-XXS on the generated shapes dataset (VOC layout), from scratch:
# the no-download demo, a few minutes on 2 CPU cores. Generate the data first:
#   python tools/dataset_converters/make_shapes_dataset.py seg data/shapes_voc
# The model is the paper's (output stride 16, 128-channel cvnets ASPP), the recipe lean:
# 160x160 crops, batch 8, 1,000 iterations, no pretrained backbone, no EMA.
_base_ = "./deeplabv3_edgenext-xxs_4xb32-50e_voc12aug-512.py"

data_root = "data/shapes_voc/VOC2012"
crop_size = (160, 160)
num_classes = 21  # the shapes are written as VOC labels (aeroplane, bicycle, tvmonitor)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
    decode_head=dict(norm_cfg=dict(type="BN", requires_grad=True)),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="RandomResize", scale=(256, 256), ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Pad", size=crop_size),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"),
        ann_file="ImageSets/Segmentation/train.txt",
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=test_pipeline),
)
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3))
max_iters = 1000
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type="CosineAnnealingLR",
        T_max=max_iters,
        eta_min_ratio=1e-3,
        by_epoch=False,
        begin=0,
        end=max_iters,
    ),
]
train_cfg = dict(
    _delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters
)
default_hooks = dict(
    logger=dict(interval=20, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(by_epoch=False)
custom_hooks = []
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)
