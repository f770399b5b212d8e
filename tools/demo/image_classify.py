"""Classify an image with a published EdgeNeXt ImageNet checkpoint.

    python tools/demo/image_classify.py IMAGE --checkpoint CKPT_OR_MODEL_NAME [--arch ARCH]

CKPT is a checkpoint in any public layout, or a model-zoo name such as
``edgenext-small_3rdparty_in1k`` found under ./checkpoints (or $EDGENEXT_CHECKPOINTS).
Prints the prediction and the top-5 as JSON. IMAGE is one image file; to classify every image
of a folder, export the classifier (``tools/deploy/export_onnx.py classifier CKPT --out
cls.onnx``) and run ``tools/deploy/onnx_infer.py FOLDER --model cls.onnx``.
"""

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import edgenext_dense  # noqa: F401  (stack workarounds)
from edgenext_dense.apis import inference_classifier, init_classifier
from edgenext_dense.models.backbones.edgenext_checkpoint import CheckpointError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Classify one image: 0, or 1 on an error (a folder, a missing, empty or undecodable
    image, an unusable checkpoint)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="one image file")
    parser.add_argument("--checkpoint", required=True, help="checkpoint path or model-zoo name")
    parser.add_argument("--arch", default=None, help="backbone arch (inferred when omitted)")
    parser.add_argument("--device", default="cpu", help="torch device. Defaults to cpu")
    args = parser.parse_args(argv)
    if os.path.isdir(args.image):  # checked before the checkpoint is loaded
        print(
            f"error: {args.image} is a folder: image_classify.py takes one image file; to "
            "classify a folder, run tools/deploy/export_onnx.py classifier CKPT --out cls.onnx, "
            f"then tools/deploy/onnx_infer.py {args.image} --model cls.onnx",
            file=sys.stderr,
        )
        return 1
    try:
        model = init_classifier(args.checkpoint, arch=args.arch, device=args.device)
        result = inference_classifier(model, args.image)
    except (CheckpointError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{result['pred_class']} (label {result['pred_label']}, score {result['pred_score']:.4f})"
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
