"""ImageNet classification with the published EdgeNeXt checkpoints, as the model zoo evaluates.

``inference_classifier(init_classifier('edgenext-xxsmall_3rdparty_in1k'), 'bird.jpg')``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Optional, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import CenterCrop
from torch import nn

from edgenext_dense.image_files import read_image
from edgenext_dense.model_zoo import (
    CROP_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    resize_for,
    resolve_checkpoint,
)
from edgenext_dense.models.backbones import EdgeNeXt, resolve_arch
from edgenext_dense.models.backbones.edgenext_blocks import LN_EPS
from edgenext_dense.models.backbones.edgenext_checkpoint import (
    CLASSIFIER_KEYS,
    match_state_dict,
    read_edgenext_checkpoint,
)

ImageLike = Union[str, os.PathLike, np.ndarray]


@lru_cache(maxsize=1)
def imagenet_classes() -> Tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in label order."""
    text = resources.files("edgenext_dense").joinpath("data/imagenet_classes.txt").read_text()
    names = tuple(line for line in text.splitlines() if line)
    assert len(names) == 1000, f"imagenet_classes.txt has {len(names)} names, expected 1000"
    return names


class EdgeNeXtClassifier(nn.Module):
    """EdgeNeXt backbone + global average pool + LayerNorm + linear head (the published net).

    Args:
        arch (str): Backbone arch. Defaults to ``'small'``.
        num_classes (int): Output classes. Defaults to 1000.
    """

    def __init__(self, arch: str = "small", num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = EdgeNeXt(arch=arch, out_indices=(3,))
        channels = self.backbone.channels[-1]
        self.norm = nn.LayerNorm(channels, eps=LN_EPS)
        self.head = nn.Linear(channels, num_classes)
        self.resize_short, self.crop_size = 292, CROP_SIZE  # init_classifier sets the checkpoint's

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised float images ``(B, 3, H, W)``."""
        features = self.backbone(images)[-1]
        return self.head(self.norm(features.mean((-2, -1))))


def init_classifier(
    checkpoint: Union[str, os.PathLike],
    arch: Optional[str] = None,
    device: Union[str, torch.device] = "cpu",
) -> EdgeNeXtClassifier:
    """The classifier in eval mode of a published checkpoint (any layout) or model-zoo name.

    Args:
        checkpoint (str | os.PathLike): A checkpoint path or a model-zoo name (:data:`MODELS`).
        arch (str, optional): Backbone arch; inferred from the checkpoint when None.
        device (str | torch.device): Where the model lives. Defaults to ``'cpu'``.
    """
    path, info = resolve_checkpoint(checkpoint)
    source = read_edgenext_checkpoint(path)
    if arch is None:
        arch = info.arch if info is not None else source.arch
        if arch is None:
            raise ValueError(
                f"cannot infer the arch of {source.describe()}: its widths match no published "
                "EdgeNeXt; pass arch= explicitly"
            )
    state = source.state_dict
    missing_head = [k for k in CLASSIFIER_KEYS if k not in state]
    if missing_head:
        raise ValueError(
            f"{source.describe()} has no classifier tensors {missing_head}: it is a "
            "backbone-only or detection/segmentation checkpoint; classification needs an "
            "ImageNet checkpoint with its head"
        )
    model = EdgeNeXtClassifier(resolve_arch(arch), num_classes=int(state["head.weight"].shape[0]))
    tensors, _ = match_state_dict(model.backbone, source)
    head = {k: state[k] for k in CLASSIFIER_KEYS}
    model.load_state_dict({**{f"backbone.{k}": v for k, v in tensors.items()}, **head})
    model.resize_short = resize_for(path, info)
    return model.to(device).eval()


def preprocess(
    image: ImageLike, resize_short: int = 292, crop_size: int = CROP_SIZE
) -> torch.Tensor:
    """The model zoo's evaluation preprocessing, with the same mmcv operations, as a
    ``(1, 3, crop_size, crop_size)`` float32 RGB tensor: Pillow bicubic resize of the short
    side, center crop, ImageNet mean/std.

    Args:
        image (str | os.PathLike | np.ndarray): A path, or an HxWx3 BGR uint8 array.
        resize_short (int): Short-side size. Defaults to 292.
        crop_size (int): Square crop. Defaults to 256.
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an HxWx3 uint8 BGR image array, got shape {image.shape} {image.dtype}"
            )
        img = image
    else:
        img = read_image(os.fspath(image))
    h, w = img.shape[:2]
    # mmpretrain ResizeEdge(edge='short'): the long side is truncated with int().
    if w < h:
        size = (resize_short, int(resize_short * h / w))
    else:
        size = (int(resize_short * w / h), resize_short)
    img = mmcv.imresize(img, size, interpolation="bicubic", backend="pillow")
    img = CenterCrop(crop_size=crop_size)(dict(img=img))["img"]
    rgb = img[..., ::-1].astype(np.float32)
    rgb = (rgb - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]


@torch.no_grad()
def inference_classifier(
    model: EdgeNeXtClassifier, image: ImageLike, topk: int = 5
) -> Dict[str, Any]:
    """Classify one image (a path or an HxWx3 BGR uint8 array): ``pred_label``, ``pred_score``,
    ``pred_class`` and ``topk``, a list of ``{'label', 'score', 'class'}``, best first."""
    device = next(model.parameters()).device
    inputs = preprocess(image, model.resize_short, model.crop_size).to(device)
    scores = model(inputs).softmax(dim=-1)[0]
    values, labels = scores.topk(min(topk, scores.numel()))
    names = imagenet_classes() if scores.numel() == 1000 else None
    top: List[Dict[str, Any]] = [
        dict(label=int(i), score=float(s), **({"class": names[int(i)]} if names else {}))
        for s, i in zip(values, labels)
    ]
    best = top[0]
    return dict(pred_label=best["label"], pred_score=best["score"],
                pred_class=best.get("class", str(best["label"])), topk=top)  # fmt: skip
