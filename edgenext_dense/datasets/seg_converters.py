"""Converters to the Pascal VOC segmentation layout: SBD ``.mat`` files and COCO instances.

:func:`convert_voc_aug` writes SBD as ``SegmentationClassAug`` PNGs and ``aug.txt`` (mmseg's
``voc_aug.py``, plus VOC's own masks, so that configs read one folder and one list);
:func:`convert_coco_to_voc` paints the COCO instances of the 20 VOC classes as
sacmehta/EdgeNets ``data_loader/segmentation/coco.py`` did for the MobileViT/EdgeNeXt recipe.
"""

from __future__ import annotations

import json
import os
import shutil
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Set, Union

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

PathLike = Union[str, os.PathLike]

NUM_VOC_CLASSES = 21

#: Training ids in aug.txt on the real VOC 2012 + SBD data.
VOC_AUG_LEN = 10582

#: Folder under the COCO root that :func:`convert_coco_to_voc` writes by default.
COCO_VOC_SEG_DIR = "voc_seg"

#: COCO category name -> VOC label (1..20). On the official COCO 2017 ids this is EdgeNets'
#: ``CAT_LIST = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]``.
# fmt: off
COCO_TO_VOC: Dict[str, int] = {name: label for label, name in enumerate((
    "airplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "dining table", "dog", "horse", "motorcycle", "person", "potted plant", "sheep", "couch",
    "train", "tv"), start=1)}
#: The VOC names of the classes that COCO names differently.
VOC_NAME_OF_COCO: Dict[str, str] = {
    "airplane": "aeroplane", "dining table": "diningtable", "motorcycle": "motorbike",
    "potted plant": "pottedplant", "couch": "sofa", "tv": "tvmonitor"}
# fmt: on

_VOC_LABEL_OF_NAME = {**COCO_TO_VOC, **{v: COCO_TO_VOC[c] for c, v in VOC_NAME_OF_COCO.items()}}
_COCO_NAME_OF_LABEL: Dict[int, str] = {label: name for name, label in COCO_TO_VOC.items()}

SBD_LAYOUT = """\
{root}/
└── dataset/
    ├── cls/        (11,355 SBD class masks, 2008_000002.mat ...)
    ├── train.txt   (8,498 ids)
    └── val.txt     (2,857 ids)
(SBD 'benchmark.tgz' from http://home.bharathh.info/pubs/codes/SBD/download.html, unpacked:
 the folder is usually called benchmark_RELEASE)"""

VOC_DEVKIT_LAYOUT = """\
{root}/
└── VOC2012/
    ├── JPEGImages/
    ├── SegmentationClass/     (2,913 palettised PNG masks)
    └── ImageSets/Segmentation/{{train,val}}.txt
(VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/)"""

COCO_LAYOUT = """\
{root}/
├── annotations/instances_{split}.json
└── {split}/   (the images)
(COCO 2017 from https://cocodataset.org/#download)"""


def voc_palette() -> List[int]:
    """The 256-entry Pascal VOC colour map, flattened for :meth:`PIL.Image.Image.putpalette`."""
    labels, palette = np.arange(256), np.zeros((256, 3), np.int64)
    for bit in range(8):  # label bits 3*bit+0/1/2 go to r/g/b bit 7-bit
        for channel in range(3):
            palette[:, channel] |= ((labels >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.ravel().tolist()


def save_voc_mask(mask: np.ndarray, path: PathLike) -> None:
    """Write an (H, W) label map in 0..255 as a palettised PNG, as VOC's masks are."""
    img = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="P")
    img.putpalette(voc_palette())
    img.save(path, format="PNG")


def read_sbd_mask(mat_file: PathLike) -> np.ndarray:
    """The (H, W) uint8 labels of one SBD ``dataset/cls/<id>.mat`` file, or ValueError saying
    why it is unreadable, not an SBD class file or holds labels above 20."""
    from scipy.io import loadmat  # scipy comes with mmseg; imported only to convert SBD

    try:
        data = loadmat(str(mat_file), squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy raises ValueError/TypeError/OSError on broken files
        raise ValueError(f"could not read {mat_file}: {type(err).__name__}: {err}") from err
    gt = data.get("GTcls")
    seg = getattr(gt, "Segmentation", None)
    if seg is None:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ValueError(
            f"{mat_file} is not an SBD class mask: expected a 'GTcls' struct with a "
            f"'Segmentation' field, found {found}. Use the files of dataset/cls/ (dataset/inst/ "
            "holds instance masks)."
        )
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise ValueError(f"{mat_file}: GTcls.Segmentation has shape {seg.shape}, expected (H, W)")
    if seg.size and (seg.min() < 0 or seg.max() >= NUM_VOC_CLASSES):
        raise ValueError(
            f"{mat_file}: labels {int(seg.min())}..{int(seg.max())} outside 0..20 (VOC classes)"
        )
    return seg.astype(np.uint8)


def _ids(path: Path) -> Set[str]:
    return set(path.read_text().split())


def _require(path: Path, what: str, layout: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist. Expected layout:\n{layout}")


def convert_voc_aug(
    devkit_path: PathLike,
    aug_path: PathLike,
    out_dir: PathLike | None = None,
    nproc: int = 1,
) -> Dict[str, object]:
    """Convert SBD to ``SegmentationClassAug`` and write ``ImageSets/Segmentation/aug.txt``,
    ``(SBD train | SBD val | VOC train) - VOC val``; VOC's masks replace SBD's.

    Args:
        devkit_path (str | os.PathLike): The ``VOCdevkit`` folder (holding ``VOC2012/``).
        aug_path (str | os.PathLike): The SBD folder (holding ``dataset/cls``).
        out_dir (str | os.PathLike, optional): Mask folder; ``VOC2012/SegmentationClassAug``.
        nproc (int): Worker processes for the ``.mat`` conversion. Defaults to 1.

    Returns:
        dict: ``out_dir``, ``num_sbd`` (SBD masks converted), ``num_voc`` (VOC masks copied),
        ``aug_list`` (the path of aug.txt) and ``num_aug`` (its ids).

    Raises:
        FileNotFoundError: For a missing input (the message shows the expected layout) or an
            id of aug.txt left without a mask.
        ValueError: For an unreadable or non-SBD ``.mat`` file.
    """
    devkit, sbd = Path(devkit_path), Path(aug_path)
    voc_root = devkit / "VOC2012"
    split_dir = voc_root / "ImageSets" / "Segmentation"
    cls_dir = sbd / "dataset" / "cls"
    devkit_layout = VOC_DEVKIT_LAYOUT.format(root=devkit)
    sbd_layout = SBD_LAYOUT.format(root=sbd)
    for path, what, layout in (
        (split_dir / "train.txt", "VOC split list", devkit_layout),
        (split_dir / "val.txt", "VOC split list", devkit_layout),
        (voc_root / "SegmentationClass", "VOC mask folder", devkit_layout),
        (cls_dir, "SBD mask folder", sbd_layout),
        (sbd / "dataset" / "train.txt", "SBD split list", sbd_layout),
        (sbd / "dataset" / "val.txt", "SBD split list", sbd_layout),
    ):
        _require(path, what, layout)
    out = Path(out_dir) if out_dir is not None else voc_root / "SegmentationClassAug"
    out.mkdir(parents=True, exist_ok=True)

    mat_files = sorted(cls_dir.glob("*.mat"))
    if not mat_files:
        raise FileNotFoundError(f"no .mat files in {cls_dir}. Expected layout:\n{sbd_layout}")
    jobs = [(str(f), str(out / f"{f.stem}.png")) for f in mat_files]
    if nproc > 1:
        with Pool(nproc) as pool:
            pool.starmap(_convert_one_mat, jobs, chunksize=64)
    else:
        for job in jobs:
            _convert_one_mat(*job)

    voc_train, voc_val = _ids(split_dir / "train.txt"), _ids(split_dir / "val.txt")
    for name in sorted(voc_train | voc_val):  # VOC's own masks: finer, borders 255
        src = voc_root / "SegmentationClass" / f"{name}.png"
        _require(src, "VOC mask", devkit_layout)
        shutil.copyfile(src, out / f"{name}.png")
    ids = sorted(
        (_ids(sbd / "dataset/train.txt") | _ids(sbd / "dataset/val.txt") | voc_train) - voc_val
    )
    missing = [i for i in ids if not (out / f"{i}.png").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} ids of the SBD/VOC lists have no mask in {out} (first: "
            f"{missing[:3]}): the SBD lists and dataset/cls do not match; re-extract SBD."
        )
    aug_list = split_dir / "aug.txt"
    aug_list.write_text("".join(f"{i}\n" for i in ids))
    num_voc = len(voc_train) + len(voc_val)
    return dict(out_dir=str(out), num_sbd=len(mat_files), num_voc=num_voc,
                aug_list=str(aug_list), num_aug=len(ids))  # fmt: skip


def _convert_one_mat(src: str, dst: str) -> None:
    save_voc_mask(read_sbd_mask(src), dst)


def coco_category_to_voc(categories: Sequence[Mapping], ann_file: PathLike) -> Dict[int, int]:
    """Category id -> VOC label (1..20) of the 20 VOC classes, by COCO or VOC name.

    Args:
        categories (Sequence[Mapping]): The json's ``categories`` (``id`` and ``name``).
        ann_file (str | os.PathLike): The annotation file, for the error message.

    Raises:
        ValueError: When one of the 20 VOC classes has no category, listing the missing ones.
    """
    cat_to_voc = {
        int(c["id"]): _VOC_LABEL_OF_NAME[c["name"]]
        for c in categories
        if c.get("name") in _VOC_LABEL_OF_NAME
    }
    missing = sorted(set(COCO_TO_VOC.values()) - set(cat_to_voc.values()))
    if missing:
        coco_names = [_COCO_NAME_OF_LABEL[label] for label in missing]
        names = ", ".join(f"{n} ({VOC_NAME_OF_COCO[n]})" if n in VOC_NAME_OF_COCO else n
                          for n in coco_names)  # fmt: skip
        raise ValueError(
            f"{ann_file} lacks {len(missing)} of the 20 VOC classes in its 'categories': "
            f"{names}. Give a COCO instances file with the 80 COCO categories, e.g. "
            "annotations/instances_train2017.json."
        )
    return cat_to_voc


def coco_voc_mask(
    anns: Sequence[Mapping], height: int, width: int, cat_to_voc: Mapping[int, int]
) -> np.ndarray:
    """The (H, W) uint8 VOC label map of one COCO image's annotations, as EdgeNets paints it.

    In file order each VOC-class instance (polygons or RLE, crowds too) paints the pixels still
    background, so the first of overlapping instances wins; nothing is 255. Raises ValueError
    when an RLE's ``size`` is not the image's.
    """
    label = np.zeros((height, width), dtype=np.uint8)
    for ann in anns:
        voc = cat_to_voc.get(ann.get("category_id"))
        seg = ann.get("segmentation")
        if voc is None or not seg:
            continue
        # frPyObjects takes polygons and uncompressed RLE, not compressed RLE
        compressed = isinstance(seg, dict) and not isinstance(seg.get("counts"), list)
        m = mask_utils.decode(seg if compressed else mask_utils.frPyObjects(seg, height, width))
        if m.ndim == 3:  # one channel per polygon of the instance
            m = m.sum(axis=2)
        if m.shape != label.shape:
            raise ValueError(
                f"annotation {ann.get('id')}: its RLE size {list(m.shape)} is not the image's "
                f"{[height, width]}"
            )
        label[(label == 0) & (m > 0)] = voc
    return label


def convert_coco_to_voc(
    coco_root: PathLike,
    split: str = "train2017",
    out_dir: PathLike | None = None,
    min_size: int = 256,
    min_labels: int = 2,
) -> Dict[str, object]:
    """Write VOC-style masks for the COCO images that show VOC classes, and their id list.

    As EdgeNets, images are kept, in the json's order, when both sides are at least ``min_size``
    and their mask holds at least ``min_labels`` distinct values, background included.

    Args:
        coco_root (str | os.PathLike): COCO root with ``annotations/instances_{split}.json``.
        split (str): COCO split. Defaults to ``'train2017'``.
        out_dir (str | os.PathLike, optional): For ``{split}/{id}.png`` and ``{split}.txt``;
            ``coco_root/voc_seg`` when None.
        min_size (int): Smallest accepted image height and width. Defaults to 256.
        min_labels (int): Smallest accepted number of distinct mask values. Defaults to 2.

    Returns:
        dict: ``out_dir``, ``list_file``, ``num_images``, ``num_kept``, ``skipped_small`` and
        ``skipped_labels``.

    Raises:
        FileNotFoundError: When the annotation file is missing (the message shows the layout).
        ValueError: When the json is not a COCO instances file or lacks a VOC class.
    """
    root = Path(coco_root)
    ann_file = root / "annotations" / f"instances_{split}.json"
    _require(ann_file, "COCO annotation file", COCO_LAYOUT.format(root=root, split=split))
    with open(ann_file) as f:
        try:
            coco = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{ann_file} is not valid JSON: {err}") from err
    if not isinstance(coco, dict) or not {"images", "annotations", "categories"} <= coco.keys():
        found = sorted(coco) if isinstance(coco, dict) else type(coco).__name__
        raise ValueError(
            f"{ann_file} is not a COCO instances file: expected 'images', 'annotations' and "
            f"'categories', found {found}"
        )
    cat_to_voc = coco_category_to_voc(coco["categories"], ann_file)
    anns_of: Dict[int, List[Mapping]] = {}  # in the json's order, as pycocotools' getAnnIds
    for ann in coco["annotations"]:
        anns_of.setdefault(ann["image_id"], []).append(ann)

    out = Path(out_dir) if out_dir is not None else root / COCO_VOC_SEG_DIR
    mask_dir = out / split
    mask_dir.mkdir(parents=True, exist_ok=True)
    kept: List[str] = []
    skipped_small = skipped_labels = 0
    written: Set[str] = set()
    for img in coco["images"]:
        height, width = int(img["height"]), int(img["width"])
        if height < min_size or width < min_size:
            skipped_small += 1
            continue
        try:
            mask = coco_voc_mask(anns_of.get(img["id"], []), height, width, cat_to_voc)
        except ValueError as err:
            raise ValueError(f"{ann_file}, image {img['id']}: {err}") from err
        if np.unique(mask).size < min_labels:
            skipped_labels += 1
            continue
        stem = Path(img["file_name"]).stem
        if stem in written:
            raise ValueError(f"{ann_file}: two images named {stem}")
        written.add(stem)
        save_voc_mask(mask, mask_dir / f"{stem}.png")
        kept.append(stem)
    list_file = out / f"{split}.txt"
    list_file.write_text("".join(f"{i}\n" for i in kept))
    return dict(out_dir=str(out), list_file=str(list_file), num_images=len(coco["images"]),
                num_kept=len(kept), skipped_small=skipped_small,
                skipped_labels=skipped_labels)  # fmt: skip
