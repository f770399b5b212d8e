# DeepLabv3 with EdgeNeXt-S plus an auxiliary FCN head on stage 3 (training only), as cvnets'
# use_aux_head builds it: 3x3 conv to 256 channels + BN + ReLU, dropout 0.1, 1x1 classifier,
# loss weight 0.4. The paper trained without it.
_base_ = "./deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"

model = dict(
    backbone=dict(out_indices=(2, 3)),
    auxiliary_head=dict(
        type="FCNHead",
        in_channels=160,
        in_index=0,
        channels=256,
        num_convs=1,
        concat_input=False,
        num_classes=_base_.num_classes,
        norm_cfg=_base_.norm_cfg,
        loss_decode=dict(type="CrossEntropyLoss", loss_weight=0.4, avg_non_ignore=True),
    ),
)
