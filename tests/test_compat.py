"""The stack workarounds in edgenext_dense.compat, each shown to be needed and safe."""

from __future__ import annotations

import contextlib
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn

from edgenext_dense import compat


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode="tensor"):
        x = torch.stack(x) if isinstance(x, list) else x
        out = self.fc(x)
        return {"loss": (out - 1).pow(2).mean()} if mode == "loss" else [out]


class _Data(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        return {"x": torch.full((2,), float(i))}


def _runner(work_dir, max_epochs: int, resume: bool = False) -> Runner:
    return Runner(
        model=_Toy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Data(),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=2,
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
        custom_hooks=[dict(type="EMAHook")],
        randomness=dict(seed=0),
        resume=resume,
        experiment_name=f"toy_{max_epochs}_{resume}",
    )


@contextlib.contextmanager
def _without_allow_list():
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        torch.serialization.add_safe_globals(saved)


def test_mmengine_checkpoint_resumes_with_weights_only(tmp_path):
    _runner(tmp_path, max_epochs=1).train()
    ckpt = tmp_path / "epoch_1.pth"
    # the file holds what broke resuming: HistoryBuffer, numpy arrays, getattr(HistoryBuffer, ..)
    with _without_allow_list():
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)))
    assert "mmengine.logging.history_buffer.HistoryBuffer" in unsafe
    assert "builtins.getattr" in unsafe
    resumed = _runner(tmp_path, max_epochs=2, resume=True)
    resumed.train()
    assert resumed.epoch == 2 and (tmp_path / "epoch_2.pth").is_file()
    loss_history = resumed.message_hub.get_scalar("train/loss")
    assert len(loss_history.data[0]) == 8  # 4 iterations of epoch 1 restored + 4 new


def test_without_the_allow_list_resume_fails(tmp_path):
    _runner(tmp_path, max_epochs=1).train()
    with _without_allow_list(), pytest.raises(pickle.UnpicklingError, match="HistoryBuffer"):
        _runner(tmp_path, max_epochs=2, resume=True).train()


class _RunsCode:
    """A pickle payload that would run a shell command when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_a_callable_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": _RunsCode(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(nn.Linear(1, 1), str(path))  # mmengine's loader, as resume uses it
    assert not marker.exists()


class _Getattr:
    """Pickles as ``getattr(obj, name)``: how mmengine stores HistoryBuffer's statistics."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


def test_allowed_getattr_only_resolves_history_buffer_methods(tmp_path):
    from mmengine.logging import HistoryBuffer

    path = tmp_path / "getattr.pth"
    torch.save({"x": _Getattr(HistoryBuffer, "mean")}, path)
    assert torch.load(path, weights_only=True)["x"] is HistoryBuffer.mean
    # getattr(ndarray, 'tofile')(path) would write a file; __init__ is not a statistic
    for obj, name in ((np.zeros(1), "tofile"), (HistoryBuffer, "__init__")):
        torch.save({"x": _Getattr(obj, name)}, path)
        with pytest.raises(pickle.UnpicklingError, match="refusing getattr"):
            torch.load(path, weights_only=True)


def test_mmdet_ssd_head_predicts():
    from mmdet.models.dense_heads import SSDHead
    from mmdet.structures import DetDataSample
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):
        head = _ssd_head(SSDHead)
    assert head.loss_cls is None
    feats = (torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2), torch.rand(1, 8, 1, 1))
    meta = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1, 1)))
    results = head.predict(feats, [meta])
    assert len(results[0].bboxes) == 10 and results[0].labels.max() < 3


def _ssd_head(cls):
    return cls(
        num_classes=3,
        in_channels=(8, 8, 8),
        anchor_generator=dict(
            type="SSDAnchorGenerator",
            scale_major=False,
            input_size=64,
            min_sizes=[12, 24, 40],
            max_sizes=[24, 40, 64],
            strides=[16, 32, 64],
            ratios=([2], [2], [2]),
        ),
        test_cfg=ConfigDict(
            nms=dict(type="nms", iou_threshold=0.45),
            min_bbox_size=0,
            score_thr=0.0,
            max_per_img=10,
            nms_pre=100,
        ),
    ).eval()


def test_apply_is_idempotent():
    from mmdet.models.dense_heads import SSDHead
    from mmengine.runner import checkpoint

    init, save = SSDHead.__init__, checkpoint.save_checkpoint
    compat.apply()
    assert SSDHead.__init__ is init and checkpoint.save_checkpoint is save
