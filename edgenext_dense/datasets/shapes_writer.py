"""What both synthetic writers share: argument checks, the manifest, and generation.

A dataset directory is complete when its manifest (:data:`MANIFEST_NAME`) says so for the same
parameters; an interrupted generation leaves an incomplete manifest and is redone. The COCO and
VOC writers (:mod:`.coco_shapes`, :mod:`.voc_shapes`) render their files through
:func:`_generate`; :mod:`edgenext_dense.datasets.synthetic` describes the datasets.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from edgenext_dense.datasets.shapes_render import (
    ImageSize,
    SceneConfig,
    _check_classes,
    _check_count,
    _check_seed,
    _normalize_size,
)

#: Bumped whenever a change alters the generated files, so that old manifests stop matching.
GENERATOR_VERSION = 1

#: Name of the manifest written into the output directory once a dataset is complete.
MANIFEST_NAME = "shapes_manifest.json"

JPEG_QUALITY = 90

# ---------------------------------------------------------------------------------------------
# Files and manifest
# ---------------------------------------------------------------------------------------------


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    """Write an RGB array as a JPEG of fixed quality (same bytes for the same array).

    Args:
        image (np.ndarray): (H, W, 3) uint8 image.
        path (Path): Output file.
    """
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def _write_json(obj: dict, path: Path) -> None:
    """Write JSON compactly (deterministic key order: insertion order).

    Args:
        obj (dict): Content.
        path (Path): Output file.
    """
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))


def _scene_params(scene: SceneConfig) -> dict:
    """The fields of a scene configuration, checked to be one.

    Args:
        scene (SceneConfig): Scene settings.

    Returns:
        dict: Its fields.
    """
    if not isinstance(scene, SceneConfig):
        raise ValueError(f"scene must be a SceneConfig, got {scene!r}")
    return dataclasses.asdict(scene)


def _manifest_params(kind: str, **params) -> dict:
    """The parameters that identify a generated dataset.

    Args:
        kind (str): ``'coco'`` or ``'voc'``.
        **params: Generator arguments (JSON-serialisable).

    Returns:
        dict: What the manifest stores and compares.
    """
    params = dict(generator=__name__, version=GENERATOR_VERSION, kind=kind, **params)
    return json.loads(json.dumps(params))  # as read back from the manifest (lists, not tuples)


def _load_manifest(out_dir: Path) -> dict | None:
    """Read the manifest in ``out_dir``, or None when there is none or it is unreadable.

    Args:
        out_dir (Path): Dataset directory.

    Returns:
        dict | None: The manifest.
    """
    try:
        with open(out_dir / MANIFEST_NAME, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _complete_dataset(out_dir: Path, params: dict) -> dict | None:
    """Return the manifest when ``out_dir`` holds a complete dataset made with ``params``.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.

    Returns:
        dict | None: The manifest, or None when the dataset must be (re)generated.
    """
    manifest = _load_manifest(out_dir)
    if manifest is None or manifest.get("params") != params or manifest.get("complete") is not True:
        return None
    for rel, size in manifest.get("files", {}).items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    """Write the manifest atomically (a crash leaves the old one or the new one, never half).

    Args:
        out_dir (Path): Dataset directory.
        manifest (dict): Content.
    """
    tmp = out_dir / (MANIFEST_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, out_dir / MANIFEST_NAME)


def _start_generation(out_dir: Path, params: dict, outputs: Sequence[Path]) -> None:
    """Prepare ``out_dir`` for a new dataset and mark it as being generated.

    Files listed by a previous manifest of this generator are removed, so no stale images are
    left behind. A directory holding data this generator did not write (e.g. the real COCO or
    VOC) is refused rather than overwritten.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.
        outputs (Sequence[Path]): Files and image folders the dataset writes.
    """
    old = _load_manifest(out_dir)
    if old is not None and old.get("params", {}).get("generator") == __name__:
        root = out_dir.resolve()
        for rel in old.get("files", {}):
            path = (out_dir / rel).resolve()
            if root in path.parents:
                path.unlink(missing_ok=True)
    else:
        taken = [p for p in outputs if p.is_file() or (p.is_dir() and any(p.iterdir()))]
        if taken:
            raise FileExistsError(
                f"{out_dir} already holds data that {__name__} did not write "
                f"({', '.join(str(p) for p in taken[:3])}); the synthetic dataset would overwrite "
                "or mix with it. Choose a new or empty directory, or delete that data first."
            )
    _write_manifest(out_dir, dict(params=params, complete=False))


def _finish_generation(out_dir: Path, params: dict, files: List[Path], summary: dict) -> dict:
    """Write the manifest that marks ``out_dir`` complete.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.
        files (list[Path]): Every file written.
        summary (dict): Counts and class names returned to the caller.

    Returns:
        dict: The manifest.
    """
    manifest = dict(
        params=params,
        complete=True,
        summary=summary,
        files={p.relative_to(out_dir).as_posix(): p.stat().st_size for p in files},
    )
    _write_manifest(out_dir, manifest)
    return manifest


@dataclass(frozen=True)
class _Request:
    """The checked arguments of a generator and the manifest parameters they make.

    Args:
        out (Path): Dataset directory.
        counts (dict[str, int]): Number of images of the ``'train'`` and ``'val'`` splits.
        size (tuple[int, int]): ``(height, width)``.
        seed (int): Dataset seed.
        classes (tuple[str, ...]): Shape classes.
        params (dict): Parameters from :func:`_manifest_params`.
    """

    out: Path
    counts: Dict[str, int]
    size: Tuple[int, int]
    seed: int
    classes: Tuple[str, ...]
    params: dict


def _check_request(
    kind: str,
    out_dir: Union[str, os.PathLike],
    num_train: int,
    num_val: int,
    img_size: ImageSize,
    seed: int,
    classes: Sequence[str],
    scene: SceneConfig,
) -> _Request:
    """Check the arguments shared by :func:`make_coco_shapes` and :func:`make_voc_shapes`.

    Args:
        kind (str): ``'coco'`` or ``'voc'``.
        out_dir (str | os.PathLike): Output directory.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.
        seed (int): Dataset seed.
        classes (Sequence[str]): Shape classes.
        scene (SceneConfig): Scene settings.

    Returns:
        _Request: The checked arguments and the parameters the manifest records.
    """
    counts = {
        "train": _check_count("num_train", num_train),
        "val": _check_count("num_val", num_val),
    }
    size = _normalize_size(img_size)
    seed = _check_seed(seed)
    classes = _check_classes(classes)
    out = Path(out_dir)
    params = _manifest_params(
        kind, num_train=counts["train"], num_val=counts["val"], img_size=list(size), seed=seed,
        classes=list(classes), scene=_scene_params(scene),
    )  # fmt: skip
    return _Request(out, counts, size, seed, classes, params)


def _generate(
    req: _Request,
    force: bool,
    outputs: Sequence[Path],
    write: Callable[[], Tuple[List[Path], dict]],
) -> Tuple[bool, dict]:
    """Reuse the complete dataset in ``req.out`` made with ``req.params``, or write it anew.

    Args:
        req (_Request): Checked arguments.
        force (bool): Regenerate even when a matching dataset exists.
        outputs (Sequence[Path]): Files and image folders the dataset writes.
        write (Callable[[], tuple[list[Path], dict]]): Writes the dataset and returns every
            file written and the summary returned to the caller.

    Returns:
        tuple[bool, dict]: Whether the dataset was reused, and its manifest.
    """
    manifest = None if force else _complete_dataset(req.out, req.params)
    if manifest is not None:
        return True, manifest
    req.out.mkdir(parents=True, exist_ok=True)
    _start_generation(req.out, req.params, outputs)
    files, summary = write()
    return False, _finish_generation(req.out, req.params, files, summary)


def _result(req: _Request, reused: bool, manifest: dict, **paths: str) -> dict:
    """What a generator returns: the directory, whether it was reused, the summary and paths.

    Args:
        req (_Request): Checked arguments.
        reused (bool): Whether the dataset was reused.
        manifest (dict): The dataset's manifest.
        **paths (str): Paths of the layout, in the order they are listed.

    Returns:
        dict: ``out_dir``, ``reused``, the manifest summary, ``paths`` and ``manifest``.
    """
    return dict(
        out_dir=str(req.out),
        reused=reused,
        **manifest["summary"],
        **paths,
        manifest=str(req.out / MANIFEST_NAME),
    )
