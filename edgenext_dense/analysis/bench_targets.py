"""What ``tools/analysis/benchmark.py`` measures: our models and the references beside them.

A :class:`Target` names one model (an EdgeNeXt backbone, mmpretrain's EdgeNeXt, or a det/seg
config) at one input size; :func:`build_deploy` builds it with random weights as the graph
module that both runtimes run (:mod:`edgenext_dense.deploy.graphs`). The measuring is in
:mod:`edgenext_dense.analysis.benchmark`.
"""

from __future__ import annotations

import contextlib
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from edgenext_dense.deploy.graph_modules import BackboneGraph
from edgenext_dense.deploy.graphs import DeployModel, config_task, deploy_from_config
from edgenext_dense.engine.config import load_config

MMDET_SSDLITE = "mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py"
MMSEG_DEEPLABV3 = "mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py"


@dataclass(frozen=True)
class Target:
    """One model to measure.

    Args:
        name (str): Display name.
        kind (str): ``'backbone'`` (``source`` is an EdgeNeXt arch), ``'mmpretrain'``
            (mmpretrain's EdgeNeXt of the arch ``source``) or ``'config'`` (``source`` is a
            det/seg config, ``mmdet::``/``mmseg::`` prefixes allowed).
        source (str): The arch or config.
        input_size (tuple[int, int]): ``(H, W)``.
        group (str): ``'backbone:ARCH'``, ``'det'`` or ``'seg'``: references are compared with
            our model of the same group.
        role (str): ``'ours'`` or ``'reference'``. Defaults to ``'ours'``.
        cfg_options (tuple[tuple[str, Any], ...]): Config overrides as ``(key, value)`` pairs
            (e.g. the reference's number of classes). Defaults to ``()``.
    """

    name: str
    kind: str
    source: str
    input_size: Tuple[int, int]
    group: str
    role: str = "ours"
    cfg_options: Tuple[Tuple[str, Any], ...] = ()


def _arch_label(arch: str) -> str:
    from edgenext_dense.models.backbones import resolve_arch

    short = {"xx_small": "XXS", "x_small": "XS", "small": "S", "base": "B"}
    return f"EdgeNeXt-{short.get(resolve_arch(arch), arch)}"


def backbone_target(arch: str, input_size: Optional[Sequence[int]] = None) -> Target:
    """An EdgeNeXt backbone (classification setting: the last stage's map), 256x256 by default.

    Its group is ``'backbone:ARCH'``: ``--compare`` sets it beside mmpretrain's EdgeNeXt of the
    same arch.

    Args:
        arch (str): EdgeNeXt arch (``'small'``, ``'xx_small'``, ``'s'``...).
        input_size (Sequence[int], optional): ``(H, W)``. Defaults to None (256x256).

    Returns:
        Target: The target.
    """
    from edgenext_dense.models.backbones import resolve_arch

    size = (256, 256) if input_size is None else (int(input_size[0]), int(input_size[1]))
    group = f"backbone:{resolve_arch(arch)}"
    return Target(f"{_arch_label(arch)} backbone", "backbone", arch, size, group)


def config_target(
    config: str,
    input_size: Optional[Sequence[int]] = None,
    role: str = "ours",
    name: Optional[str] = None,
    cfg_options: Optional[Dict[str, Any]] = None,
) -> Target:
    """A detector or segmentor config, at its test size unless given.

    Args:
        config (str): Config path (or ``mmdet::``/``mmseg::`` config).
        input_size (Sequence[int], optional): ``(H, W)``; None takes the detector's test
            resize or the segmentor's training crop. Defaults to None.
        role (str): ``'ours'`` or ``'reference'``. Defaults to ``'ours'``.
        name (str, optional): Display name; None uses the file name. Defaults to None.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        Target: The target.
    """
    from edgenext_dense.deploy.graphs import _config_input_size, pipeline_resize

    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task = config_task(cfg)
    if input_size is None:
        size = _config_input_size(cfg, task, pipeline_resize(cfg, task))
    else:
        size = (int(input_size[0]), int(input_size[1]))
    label = name or osp.splitext(osp.basename(config.split("::")[-1]))[0]
    options = tuple(sorted((cfg_options or {}).items()))
    return Target(label, "config", config, size, task, role, options)


def reference_targets(targets: Sequence[Target]) -> List[Target]:
    """What a user would pick instead, at the input size of each of our models.

    - beside an EdgeNeXt backbone: mmpretrain's EdgeNeXt of the same arch (the model zoo's
      straightforward implementation, :mod:`edgenext_dense.analysis.mmpretrain_reference`);
    - beside our detector: mmdet's SSDLite-MobileNetV2;
    - beside our segmentor: mmseg's DeepLabv3 with MobileNetV2 (21 classes).

    Args:
        targets (Sequence[Target]): Our backbones and det/seg configs.

    Returns:
        list[Target]: One reference per backbone arch/size and per det or seg group.

    Raises:
        ValueError: When ``targets`` holds nothing to compare, or a backbone while mmpretrain
            is not installed.
    """
    from edgenext_dense.analysis.mmpretrain_reference import INSTALL_HINT, mmpretrain_available

    refs = []
    for ours in targets:
        if ours.kind != "backbone" or ours.role != "ours":
            continue
        if not mmpretrain_available():
            raise ValueError(
                f"--compare sets {ours.name} beside mmpretrain's EdgeNeXt, which is not "
                f"installed: {INSTALL_HINT}"
            )
        name = f"{ours.name.replace(' backbone', '')} (mmpretrain)"
        ref = Target(name, "mmpretrain", ours.source, ours.input_size, ours.group, "reference")
        if ref not in refs:
            refs.append(ref)
    for group, config, name, options in (
        ("det", MMDET_SSDLITE, "SSDLite MobileNetV2 (mmdet)", {}),
        (
            "seg",
            MMSEG_DEEPLABV3,
            "DeepLabv3 MobileNetV2-D8 (mmseg)",
            {"model.decode_head.num_classes": 21, "model.auxiliary_head.num_classes": 21},
        ),
    ):
        ours = next((t for t in targets if t.group == group and t.role == "ours"), None)
        if ours is not None:
            refs.append(config_target(config, ours.input_size, "reference", name, options))
    if not refs:
        raise ValueError(
            "--compare needs a backbone or a detection/segmentation config to set beside "
            "mmpretrain's EdgeNeXt, mmdet's SSDLite-MobileNetV2 or mmseg's "
            "DeepLabv3-MobileNetV2"
        )
    return refs


def build_deploy(target: Target) -> DeployModel:
    """Build ``target``'s graph with random weights (seeded), in eval mode.

    Args:
        target (Target): What to build.

    Returns:
        DeployModel: The graph to time and export.
    """
    torch.manual_seed(0)
    if target.kind in ("backbone", "mmpretrain"):
        if target.kind == "mmpretrain":
            from edgenext_dense.analysis.mmpretrain_reference import build_mmpretrain_edgenext

            backbone = build_mmpretrain_edgenext(target.source, out_indices=(3,))
        else:
            from edgenext_dense.models.backbones import EdgeNeXt

            backbone = EdgeNeXt(arch=target.source, out_indices=(3,)).eval()
        return DeployModel(
            BackboneGraph(backbone).eval(), "backbone", target.input_size, ("feat3",), False
        )
    with contextlib.redirect_stdout(sys.stderr):
        options = dict(target.cfg_options) or None
        return deploy_from_config(target.source, None, target.input_size, options)
