#!/usr/bin/env bash
# The project's main job with nothing downloaded: generate the synthetic shapes dataset,
# pretrain an EdgeNeXt-XXS classifier on rendered shape crops (the demo's stand-in for the
# ImageNet checkpoint), train SSDLite + EdgeNeXt-XXS from it on the CPU, evaluate COCO mAP, and
# draw detections on val images.
#   bash tools/run_demo.sh            (tools/setup.sh runs it after installing)
# Results: work_dirs/demo_det/ (checkpoint, log, curves.png) and outputs/demo_det/vis/*.jpg.
# Re-running reuses the dataset, the pretrained backbone (unless its settings changed) and, when
# training from that backbone already finished, the detector checkpoint.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
CFG=configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py
DATA=data/shapes_coco
PRETRAINED=checkpoints/edgenext_xx_small_shapes.pth
WORK=work_dirs/demo_det
OUT=outputs/demo_det
step() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }

step "1/5 synthetic COCO-format shapes dataset in $DATA"
$PY tools/dataset_converters/make_shapes_dataset.py det "$DATA"

step "2/5 EdgeNeXt-XXS classifier pretrained on rendered shape crops: $PRETRAINED (about two minutes)"
$PY tools/pretrain_shapes.py --out "$PRETRAINED"

step "3/5 training $CFG on the CPU (a few minutes; log and curves.png in $WORK)"
RESUME=--resume
if [ -f "$WORK/last_checkpoint" ] && [ "$PRETRAINED" -nt "$(cat "$WORK/last_checkpoint")" ]; then
    echo "the pretrained backbone is newer than $WORK's checkpoints: training from it afresh"
    RESUME=
fi
$PY tools/train.py "$CFG" --work-dir "$WORK" $RESUME
CKPT="$(cat "$WORK/last_checkpoint")"

step "4/5 COCO evaluation of $CKPT on $DATA/val2017"
$PY tools/test.py "$CFG" "$CKPT" --work-dir "$WORK"

step "5/5 detections drawn on 4 val images in $OUT/vis"
mkdir -p "$OUT/images"
for img in $(ls "$DATA/val2017" | head -n 4); do cp "$DATA/val2017/$img" "$OUT/images/"; done
$PY tools/demo/image_demo.py "$OUT/images" "$CFG" --weights "$CKPT" --out-dir "$OUT" --score-thr 0.5 --one-per-object

step "done: metrics above; checkpoint $CKPT; curves $WORK/curves.png; drawings $OUT/vis/"
