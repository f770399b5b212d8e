# DeepLabv3 with EdgeNeXt-XXS on the generated shapes dataset (VOC layout): the no-download
# segmentation demo for 2 CPU cores (about 10.5 minutes). Generate the data and the pretrained
# backbone first (about two minutes):
#   python tools/dataset_converters/make_shapes_dataset.py seg data/shapes_voc
#   python tools/pretrain_shapes.py --out checkpoints/edgenext_xx_small_shapes.pth
#   python tools/train.py configs/seg/deeplabv3_edgenext-xxs_1xb8-2k_shapesvoc-256.py
# The recipe of the quicker 192 px variant it inherits, with what each step of the search in
# docs/benchmarks.md showed the shapes need:
# - the images at their generated 256 px: at 192 px the output-stride-16 logits (12x12) lose the
#   triangles' corners and thin shapes;
# - the head at 5x the backbone's rate (the paper's recipe has 10x): with one rate the randomly
#   initialised head is what learns slowly, and a higher rate for all breaks the backbone;
# - 2,000 iterations of batch 8 (32 epochs of the 500 images).
_base_ = "./deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"

img_scale = (256, 256)
crop_size = img_scale
max_iters = 2000

model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadCheckedAnnotations", num_classes={{_base_.num_classes}}),
    dict(type="RandomResize", scale=img_scale, ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Pad", size=crop_size),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=img_scale, keep_ratio=True),
    dict(type="LoadCheckedAnnotations", num_classes={{_base_.num_classes}}),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={"decode_head": dict(lr_mult=5.0), "auxiliary_head": dict(lr_mult=5.0)}
    )
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=30),
    dict(
        type="CosineAnnealingLR", T_max=max_iters, eta_min_ratio=1e-3, by_epoch=False, end=max_iters
    ),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
