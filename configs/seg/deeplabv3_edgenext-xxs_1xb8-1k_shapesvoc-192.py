# DeepLabv3 with EdgeNeXt-XXS on the generated shapes dataset (VOC layout): the quick (3-minute)
# variant of the no-download demo, deeplabv3_edgenext-xxs_1xb8-2k_shapesvoc-256.py, which
# inherits it. Generate the data and the pretrained backbone first (about two minutes):
#   python tools/dataset_converters/make_shapes_dataset.py seg data/shapes_voc
#   python tools/pretrain_shapes.py --out checkpoints/edgenext_xx_small_shapes.pth
#   python tools/train.py configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py
# The model is the paper's (output stride 16, 128-channel cvnets ASPP head); what differs from
# the VOC recipe, and why:
# - the backbone starts from an EdgeNeXt-XXS classifier trained on rendered shape crops
#   (tools/pretrain_shapes.py), the stand-in for the ImageNet checkpoint: from scratch the shapes
#   are told apart too late (the runs: docs/benchmarks.md);
# - whole images at 192 px (256 px generated, resized x0.75..1.25, 192 crops), also at test:
#   the shapes have random colours, so only their outline tells shape from background and one
#   class from another, and a crop that cuts a shape hides it;
# - ASPP rates 2/4/6: at 12x12 feature maps, rates 6/12/18 would sample mostly padding in
#   training and image pixels at test;
# - one learning rate (the x10 head rate suits a backbone pretrained on a million images),
#   AdamW 2e-3, cosine over 1,000 iterations of batch 8, BN, no EMA.
_base_ = "./deeplabv3_edgenext-xxs_4xb32-50e_voc12aug-512.py"

data_root = "data/shapes_voc/VOC2012"
img_scale = (192, 192)
crop_size = img_scale
num_classes = 21  # the shapes are written as VOC labels (aeroplane, bicycle, tvmonitor)
max_iters = 1000

# what tools/pretrain_shapes.py writes by default; the missing-file message quotes the command
checkpoint = "checkpoints/edgenext_xx_small_shapes.pth"
pretrain_command = f"python tools/pretrain_shapes.py --out {checkpoint}"

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(type="Pretrained", checkpoint=checkpoint)),
    decode_head=dict(dilations=(1, 2, 4, 6), norm_cfg=dict(type="BN", requires_grad=True)),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="RandomResize", scale=img_scale, ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Pad", size=crop_size),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=img_scale, keep_ratio=True),
    dict(type="LoadCheckedAnnotations", num_classes=num_classes),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    sampler=dict(type="InfiniteSampler"),
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(seg_map_path="SegmentationClass"),
        ann_file="ImageSets/Segmentation/train.txt",
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=2e-3),
    paramwise_cfg=dict(
        custom_keys={"decode_head": dict(lr_mult=1.0), "auxiliary_head": dict(lr_mult=1.0)}
    ),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=30),
    dict(
        type="CosineAnnealingLR", T_max=max_iters, eta_min_ratio=1e-3, by_epoch=False, end=max_iters
    ),
]
train_cfg = dict(
    _delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters
)
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(by_epoch=False)
custom_hooks = []
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)
