"""Classification pretraining on rendered shapes: the no-download demos' stand-in for ImageNet.

Trained from scratch on a few hundred images, the dense demos learn where shapes are long
before which shape is which; so an EdgeNeXt classifier is first trained on crops of shapes in
rendered scenes (their own random streams) and its backbone saved in the published layout,
which the demo configs load with ``init_cfg=dict(type='Pretrained', ...)``.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from edgenext_dense.datasets.shapes_render import COCO_SCENE, SHAPE_CLASSES, render_scene, scene_rng
from edgenext_dense.model_zoo import IMAGENET_MEAN, IMAGENET_STD
from edgenext_dense.models.backbones import EdgeNeXt, resolve_arch
from edgenext_dense.models.backbones.edgenext_checkpoint import (
    CheckpointError,
    read_checkpoint,
    save_official,
)

__all__ = ["RECIPE_VERSION", "PretrainResult", "pretrain_shapes_classifier", "recipe_mismatch",
           "render_shape_crops"]  # fmt: skip

# NOTE: raise it whenever the training or its rendered crops change (not its arguments) in a way
# that changes the weights written, so that files of the former recipe are retrained, not kept.
RECIPE_VERSION = 2


@dataclass
class PretrainResult:
    """The checkpoint written, the arch, the classes in logit order, the top-1 accuracy on the
    rendered val crops, the iterations and the training wall time."""

    path: str
    arch: str
    classes: Tuple[str, ...]
    val_accuracy: float
    iters: int
    seconds: float


def render_shape_crops(
    num_scenes: int,
    crop_size: int,
    split: str,
    seed: int,
    classes: Sequence[str] = SHAPE_CLASSES,
    scene_size: int = 320,
    margin: float = 0.15,
) -> Tuple[np.ndarray, np.ndarray]:
    """Render detection-style scenes and cut out every visible shape as a labelled crop.

    Each crop is the shape's visible box grown by ``margin`` of its longer side on every edge,
    resized to a square: what a box of the detection demo holds (one shape, parts of its
    neighbours, background).

    Args:
        num_scenes (int): Scenes to render (> 0); each gives 1-6 crops.
        crop_size (int): Crop side in pixels.
        split (str): ``'train'`` or ``'val'``: separate random streams.
        seed (int): Seed; the same arguments give the same crops.
        classes (Sequence[str]): Shape classes. Defaults to :data:`SHAPE_CLASSES`.
        scene_size (int): Side of the rendered scenes. Defaults to 320 (the detection demo's).
        margin (float): Context around each box, a fraction of its longer side. Defaults to 0.15.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(N, crop_size, crop_size, 3)`` uint8 RGB crops and
        their ``(N,)`` int64 indices into ``classes``.
    """
    if num_scenes <= 0:
        raise ValueError(f"need at least one scene, got num_scenes={num_scenes}")
    classes = tuple(classes)
    crops, labels = [], []
    for i in range(num_scenes):
        scene = render_scene(scene_rng(seed, "cls", split, i), scene_size, classes, COCO_SCENE)
        image = Image.fromarray(scene.image)
        for k, shape in enumerate(scene.instances):
            x, y, w, h = scene.visible_box(k)
            pad = margin * max(w, h)
            box = (x - pad, y - pad, x + w + pad, y + h + pad)
            crop = image.transform((crop_size, crop_size), Image.EXTENT, box, Image.BILINEAR)
            crops.append(np.asarray(crop))
            labels.append(classes.index(shape.label))
    return np.stack(crops), np.asarray(labels, dtype=np.int64)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC RGB -> float NCHW normalised as the dense configs do (ImageNet mean/std)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (x - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


class _PooledLinear(nn.Module):
    """Backbone, global average pool and a linear layer: the pretraining classifier.

    NOTE: no LayerNorm before the linear layer, unlike the published classifier: with it, the
    features transfer badly (docs/benchmarks.md).
    """

    def __init__(self, backbone: EdgeNeXt, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.channels[-1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images)[-1].mean((-2, -1)))


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + 256]).argmax(1) == y[i : i + 256]).sum())
        for i in range(0, len(x), 256)
    )
    return correct / len(x)


def pretrain_shapes_classifier(
    out: Union[str, os.PathLike],
    arch: str = "xx_small",
    iters: int = 1600,
    batch_size: int = 64,
    img_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    num_train: int = 800,
    num_val: int = 100,
    seed: int = 0,
    layer_scale_init_value: float = 1.0,
    log: Optional[Callable[[str], None]] = print,
    log_interval: int = 50,
) -> PretrainResult:
    """Train an EdgeNeXt classifier on rendered shapes and save its backbone, published layout.

    AdamW at a constant learning rate, batches mirrored at random, the crops rendered once.
    Deterministic for a given seed and thread count.

    Args:
        out (str | os.PathLike): Checkpoint to write (official names, settings in ``meta``).
        arch (str): Backbone arch, any spelling. Defaults to ``'xx_small'``.
        iters (int): Training iterations. Defaults to 1600.
        batch_size (int): Images per iteration. Defaults to 64.
        img_size (int): Crop side in pixels. Defaults to 64.
        lr (float): Learning rate. Defaults to 2e-3.
        weight_decay (float): AdamW weight decay. Defaults to 0.05.
        num_train (int): Training scenes rendered (about 3.5 crops each). Defaults to 800.
        num_val (int): Validation scenes rendered. Defaults to 100.
        seed (int): Seed of the images, the initialisation and the batches. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to 1.0: from scratch,
            the published 1e-6 keeps the blocks near identity for too long for a short run.
        log (Callable[[str], None], optional): Progress printer, None silent. Defaults to print.
        log_interval (int): Iterations between progress lines. Defaults to 50.

    Returns:
        PretrainResult: The file written and the validation accuracy reached.
    """
    if iters <= 0 or batch_size <= 0:
        raise ValueError(f"need iters > 0 and batch_size > 0, got {iters} and {batch_size}")
    arch = resolve_arch(arch)
    say = log or (lambda _msg: None)
    classes = tuple(SHAPE_CLASSES)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    started = time.perf_counter()
    x_train, y_train = render_shape_crops(num_train, img_size, "train", seed, classes)
    x_val, y_val = render_shape_crops(num_val, img_size, "val", seed, classes)
    x_train, x_val = _to_tensor(x_train), _to_tensor(x_val)
    y_train, y_val = torch.from_numpy(y_train), torch.from_numpy(y_val)
    say(f"rendered {len(x_train)} train / {len(x_val)} val {img_size}px shape crops "
        f"({time.perf_counter() - started:.1f} s)")  # fmt: skip

    backbone = EdgeNeXt(arch=arch, out_indices=(3,), layer_scale_init_value=layer_scale_init_value)
    backbone.init_weights()
    model = _PooledLinear(backbone, len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    started = time.perf_counter()
    model.train()
    for step in range(iters):
        idx = torch.randint(0, len(x_train), (batch_size,), generator=generator)
        x = x_train[idx]
        if torch.rand(1, generator=generator).item() < 0.5:  # the whole batch, mirrored
            x = x.flip(3)
        loss = F.cross_entropy(model(x), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % log_interval == 0 or step + 1 == iters:
            elapsed = time.perf_counter() - started
            say(f"iter {step + 1}/{iters}  loss {loss.item():.3f}  {elapsed:.0f} s")
    seconds = time.perf_counter() - started
    accuracy = _accuracy(model, x_val, y_val)
    say(f"val top-1 accuracy {accuracy:.3f} on {len(x_val)} crops")

    local = locals()  # the arguments, arch resolved
    meta = {name: local[name] for name in _DEFAULT_SETTINGS}
    meta.update(source_format="shapes-pretrain", recipe=RECIPE_VERSION, classes=list(classes),
                val_accuracy=round(accuracy, 4))  # fmt: skip
    save_official(dict(backbone.state_dict()), out, meta=meta)
    say(f"saved {out}")
    return PretrainResult(os.fspath(out), arch, classes, accuracy, iters, seconds)


def recipe_mismatch(path: Union[str, os.PathLike], **settings: Any) -> Optional[str]:
    """How an existing pretraining checkpoint differs from what ``settings`` would train.

    Args:
        path (str | os.PathLike): A file written by :func:`pretrain_shapes_classifier`.
        **settings: Its keyword arguments (``arch`` in any spelling); others keep defaults.

    Returns:
        str | None: None when the file was trained with this recipe and these settings; else
        what differs, e.g. ``"iters 800 (now 1600)"``.

    Raises:
        ValueError: When ``path`` is unreadable or was not written by
            :func:`pretrain_shapes_classifier` (it must not be overwritten unasked).
    """
    unknown = sorted(set(settings) - set(_DEFAULT_SETTINGS))
    if unknown:
        raise TypeError(f"recipe_mismatch() got unknown settings {unknown}")
    try:
        meta = read_checkpoint(path).get("meta") or {}
    except CheckpointError as err:
        raise ValueError(f"{err}; delete it, or pass --force to overwrite it") from err
    if meta.get("source_format") != "shapes-pretrain":
        raise ValueError(
            f"{os.fspath(path)} is not a checkpoint of tools/pretrain_shapes.py (its meta says "
            f"source_format={meta.get('source_format')!r}); choose another --out, or pass "
            "--force to overwrite it"
        )
    wanted = dict(_DEFAULT_SETTINGS, **settings, recipe=RECIPE_VERSION)
    wanted["arch"] = resolve_arch(wanted["arch"])
    diffs = [f"{k} {meta.get(k, 'unrecorded')} (now {v})" for k, v in wanted.items()
             if meta.get(k) != v]  # fmt: skip
    return ", ".join(diffs) or None


# the training settings pretrain_shapes_classifier takes, with their defaults
_DEFAULT_SETTINGS = {
    p.name: p.default
    for p in inspect.signature(pretrain_shapes_classifier).parameters.values()
    if p.name not in ("out", "log", "log_interval")
}
