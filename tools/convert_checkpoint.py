"""Convert any public EdgeNeXt checkpoint (official, timm, mmpretrain) to our layout.

    python tools/convert_checkpoint.py SRC.pth DST.pth [--no-ema]

Our layout is the authors' module names as a plain ``{'state_dict', 'meta'}`` file; every
tensor, the classifier included, is kept. Prints the detected format, architecture and count.
"""

import argparse
import sys

import edgenext_dense  # noqa: F401  (stack workarounds)
from edgenext_dense.models.backbones.edgenext_checkpoint import CheckpointError, convert_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="checkpoint in any known EdgeNeXt layout")
    parser.add_argument("dst", help="where to write the converted checkpoint")
    parser.add_argument(
        "--no-ema",
        action="store_true",
        help="official training files: take 'model', not 'model_ema'",
    )
    args = parser.parse_args()
    try:
        source = convert_file(args.src, args.dst, prefer_ema=not args.no_ema)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"format: {source.format}")
    print(f"arch: {source.arch or 'custom width'}")
    print(f"tensors: {len(source.state_dict)}")
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
