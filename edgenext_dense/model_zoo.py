"""The published EdgeNeXt ImageNet-1k classifiers, by the model zoo's names.

Names, accuracies, FLOPs and file names are those of the OpenMMLab model zoo (mmpretrain
``configs/edgenext/metafile.yml``), which converted the authors' release. Nothing is downloaded:
given a name, the file is looked for under a local checkpoint folder, and when it is absent the
error says which file to fetch from where and where to put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

CHECKPOINT_DIR_ENV = "EDGENEXT_CHECKPOINTS"
DEFAULT_CHECKPOINT_DIR = "checkpoints"
_OPENMMLAB = "https://download.openmmlab.com/mmclassification/v0/edgenext/"
_OFFICIAL = "https://github.com/mmaaz60/EdgeNeXt/releases/download/"


@dataclass(frozen=True)
class ZooModel:
    """One published classifier.

    Args:
        name (str): Model-zoo name, e.g. ``'edgenext-small_3rdparty_in1k'``.
        arch (str): Backbone arch.
        resize_short (int): Evaluation resize of the short side (bicubic) before the 256 crop.
        top1 (float): Published ImageNet-1k top-1 accuracy (%).
        top5 (float): Published top-5 accuracy (%).
        params (int): Parameters of the full classifier.
        flops (int): FLOPs (multiply-adds) at 256x256.
        filename (str): File name in the OpenMMLab model zoo.
        official_url (str): The authors' release file it was converted from.
    """

    name: str
    arch: str
    resize_short: int
    top1: float
    top5: float
    params: int
    flops: int
    filename: str
    official_url: str

    @property
    def url(self) -> str:
        """Download address of the OpenMMLab file."""
        return _OPENMMLAB + self.filename


CROP_SIZE = 256
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# name, arch, resize_short, top1, top5, params, flops, OpenMMLab file, the authors' file
# fmt: off
MODELS: Dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("edgenext-xxsmall_3rdparty_in1k", "xx_small", 292, 71.20, 89.91, 1_327_216,
                 255_640_144, "edgenext-xxsmall_3rdparty_in1k_20220801-7ca8a81d.pth",
                 _OFFICIAL + "v1.0/edgenext_xxsmall.pth"),
        ZooModel("edgenext-xsmall_3rdparty_in1k", "x_small", 292, 74.86, 92.31, 2_336_804,
                 529_970_560, "edgenext-xsmall_3rdparty_in1k_20220801-974f9fe7.pth",
                 _OFFICIAL + "v1.0/edgenext_xsmall.pth"),
        ZooModel("edgenext-small_3rdparty_in1k", "small", 292, 79.41, 94.53, 5_586_832,
                 1_249_788_000, "edgenext-small_3rdparty_in1k_20220801-d00db5f8.pth",
                 _OFFICIAL + "v1.0/edgenext_small.pth"),
        ZooModel("edgenext-small-usi_3rdparty_in1k", "small", 269, 81.06, 95.34, 5_586_832,
                 1_249_788_000, "edgenext-small_3rdparty-usi_in1k_20220801-ae6d8dd3.pth",
                 _OFFICIAL + "v1.1/edgenext_small_usi.pth"),
        ZooModel("edgenext-base_3rdparty_in1k", "base", 292, 82.48, 96.20, 18_511_292,
                 3_814_395_280, "edgenext-base_3rdparty_in1k_20220801-9ade408b.pth",
                 _OFFICIAL + "v1.2/edgenext_base.pth"),
        ZooModel("edgenext-base_3rdparty-usi_in1k", "base", 269, 83.67, 96.70, 18_511_292,
                 3_814_395_280, "edgenext-base_3rdparty-usi_in1k_20220801-909e8939.pth",
                 _OFFICIAL + "v1.2/edgenext_base_usi.pth"),
    )
}
# fmt: on


def checkpoint_dir() -> Path:
    """Where named checkpoints are looked for: ``$EDGENEXT_CHECKPOINTS`` or ``./checkpoints``."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV, DEFAULT_CHECKPOINT_DIR))


def get_model_info(name: str) -> ZooModel:
    """The :class:`ZooModel` of a name of :data:`MODELS`; a KeyError lists the known names."""
    if name not in MODELS:
        raise KeyError(f"unknown EdgeNeXt model {name!r}; known models: {sorted(MODELS)}")
    return MODELS[name]


def resolve_checkpoint(name_or_path: Union[str, os.PathLike]) -> Tuple[Path, Optional[ZooModel]]:
    """The local file of a model-zoo name or a path, and its :class:`ZooModel` (None for a path).

    Raises:
        FileNotFoundError: For a name without a local file, saying what to fetch and where.
    """
    key = os.fspath(name_or_path)
    if key not in MODELS:
        return Path(key), None
    info = MODELS[key]
    folder = checkpoint_dir()
    for candidate in (info.filename, Path(info.official_url).name, f"{info.name}.pth"):
        if (folder / candidate).is_file():
            return folder / candidate, info
    raise FileNotFoundError(
        f"no local file for {info.name!r}: nothing downloads here. Fetch\n"
        f"  {info.url}\n"
        f"(or the authors' {info.official_url}) and put it at\n"
        f"  {folder / info.filename}\n"
        f"(the folder is ${CHECKPOINT_DIR_ENV} when set, else ./{DEFAULT_CHECKPOINT_DIR}); "
        "or pass the file's path instead of the name."
    )


def resize_for(path: Union[str, os.PathLike], info: Optional[ZooModel]) -> int:
    """Evaluation short-side resize before the 256 crop: the zoo entry's, else by file name
    (269 for the USI checkpoints, 292 for the others)."""
    if info is not None:
        return info.resize_short
    return 269 if "usi" in Path(path).name.lower() else 292
