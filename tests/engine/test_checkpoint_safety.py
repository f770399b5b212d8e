"""Killing training while it saves a checkpoint loses at most one checkpoint interval.

Covers ``edgenext_dense.compat``'s atomic saves and the hook's save-then-remove order, and
``edgenext_dense.engine.checkpointing``: auto-resume skipping unusable files, and the error for a
truncated or code-carrying checkpoint given explicitly.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
from pathlib import Path
from typing import IO, Iterator, List

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mm_checkpoint
from torch import nn

from edgenext_dense.compat import atomic_open
from edgenext_dense.engine.checkpointing import check_checkpoint_readable, find_resumable_checkpoint
from edgenext_dense.engine.preflight import PreflightError, unreadable_reason

REPO = Path(__file__).resolve().parents[2]


class _Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in mmengine catches it."""


# torch reports the dead file as a RuntimeError when it closes its zip writer
DIED = (_Killed, RuntimeError)


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, mode="tensor"):
        out = self.fc(x)
        return {"loss": out.pow(2).mean()} if mode == "loss" else [out]


class _Data(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return {"x": torch.full((4,), float(i))}


def _toy_runner(work_dir: Path, max_epochs: int, load_from: str | None = None) -> Runner:
    return Runner(
        model=_Toy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Data(),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=2,
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=1)),
        resume=load_from is not None,
        load_from=load_from,
        experiment_name=f"ckpt_safety_{work_dir.name}_{max_epochs}_{load_from is not None}",
    )


class _DiesWhileWriting:
    """A file that takes ``budget`` bytes, then the process "dies" with the file half written."""

    def __init__(self, f: IO[bytes], budget: int) -> None:
        self.f, self.budget = f, budget

    def write(self, data: bytes) -> int:
        self.f.write(bytes(data[: max(self.budget, 0)]))
        self.budget -= len(data)
        if self.budget <= 0:  # dead: this and every later write fail
            self.f.flush()
            raise _Killed("killed while writing a checkpoint")
        return len(data)

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self) -> _DiesWhileWriting:
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def _die_while_writing(monkeypatch, spared: int = 0, budget: int = 1024) -> None:
    """Make every checkpoint file opened for writing after the first ``spared`` ones die midway.

    Both mmengine's writer and ours open the file with ``open``, so the crash hits either one
    where the user's run was killed: while bytes go to disk.
    """
    real_open = builtins.open
    opened = {"n": 0}

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "w" not in mode or not str(file).endswith((".pth", ".pth.tmp")):
            return f
        opened["n"] += 1
        return f if opened["n"] <= spared else _DiesWhileWriting(f, budget)

    monkeypatch.setattr(builtins, "open", fake_open)


def _write_fragment(path: Path, obj) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@contextlib.contextmanager
def _mmengine_log() -> Iterator[List[str]]:
    """What mmengine's current logger prints (``print_log(..., logger='current')``)."""
    logger = MMLogger.get_current_instance()
    recorder = _Recorder()
    logger.addHandler(recorder)
    try:
        yield recorder.lines
    finally:
        logger.removeHandler(recorder)


def _warnings_naming(lines: List[str], name: str) -> List[str]:
    return [line for line in lines if line.startswith("WARNING") and name in line]


def _warnings_in(log: Path, name: str) -> bool:
    """Whether a subprocess's output has an mmengine warning line naming ``name``."""
    return any(" - WARNING - " in line and name in line for line in log.read_text().splitlines())


# -- atomic writes ---------------------------------------------------------------------------


def test_save_killed_midway_leaves_the_previous_complete_file(tmp_path, monkeypatch):
    path = tmp_path / "epoch_1.pth"
    mm_checkpoint.save_checkpoint({"step": 1, "w": torch.ones(4000)}, str(path))
    _die_while_writing(monkeypatch)
    with pytest.raises(DIED):
        mm_checkpoint.save_checkpoint({"step": 2, "w": torch.zeros(4000)}, str(path))
    monkeypatch.undo()
    # mmengine alone leaves the first 1024 bytes of step 2 under the final name
    assert torch.load(path, weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth"]  # no fragment left


def test_save_replaces_the_file_and_reuses_a_leftover_temporary(tmp_path):
    path = tmp_path / "epoch_1.pth"
    mm_checkpoint.save_checkpoint({"step": 1}, str(path))
    (tmp_path / "epoch_1.pth.tmp").write_bytes(b"PK\x03\x04 a save killed earlier")
    mm_checkpoint.save_checkpoint({"step": 2}, str(path))
    assert torch.load(path, weights_only=True)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth"]


def test_text_file_written_atomically_keeps_old_content_on_a_crash(tmp_path):
    pointer = tmp_path / "last_checkpoint"
    pointer.write_text("epoch_1.pth")
    with pytest.raises(_Killed), atomic_open(str(pointer), "w") as f:
        f.write("epoch_")
        raise _Killed
    assert pointer.read_text() == "epoch_1.pth"


# -- the checkpoint hook ---------------------------------------------------------------------


def test_killed_save_keeps_previous_checkpoint_and_resume_continues(tmp_path, monkeypatch):
    _die_while_writing(monkeypatch, spared=1)
    with pytest.raises(DIED):
        _toy_runner(tmp_path, max_epochs=2).train()
    monkeypatch.undo()
    # mmengine alone removed epoch_1.pth, then left a fragment of epoch_2.pth
    assert {p.name for p in tmp_path.glob("*.pth")} == {"epoch_1.pth"}
    assert unreadable_reason(str(tmp_path / "epoch_1.pth")) is None
    assert Path((tmp_path / "last_checkpoint").read_text()).name == "epoch_1.pth"

    found = find_resumable_checkpoint(str(tmp_path))
    assert found is not None and Path(found).name == "epoch_1.pth"
    runner = _toy_runner(tmp_path, max_epochs=2, load_from=found)
    runner.train()
    assert runner.epoch == 2
    assert {p.name for p in tmp_path.glob("*.pth")} == {"epoch_2.pth"}  # old one removed after
    assert Path((tmp_path / "last_checkpoint").read_text()).name == "epoch_2.pth"
    assert torch.load(tmp_path / "epoch_2.pth", weights_only=True)["meta"]["epoch"] == 2


def test_old_checkpoint_left_by_a_kill_is_removed_on_resume(tmp_path, monkeypatch):
    def die(self, filepath):
        raise _Killed("killed before the old checkpoint was removed")

    monkeypatch.setattr(LocalBackend, "remove", die)
    with pytest.raises(_Killed):
        _toy_runner(tmp_path, max_epochs=2).train()
    monkeypatch.undo()
    assert {p.name for p in tmp_path.glob("*.pth")} == {"epoch_1.pth", "epoch_2.pth"}
    assert Path((tmp_path / "last_checkpoint").read_text()).name == "epoch_2.pth"

    _toy_runner(tmp_path, max_epochs=2, load_from=find_resumable_checkpoint(str(tmp_path))).train()
    assert {p.name for p in tmp_path.glob("*.pth")} == {"epoch_2.pth"}  # max_keep_ckpts=1


# -- auto-resume -----------------------------------------------------------------------------


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_search_skips_missing_truncated_and_code_carrying_files(tmp_path):
    torch.save({"meta": {"epoch": 9}}, tmp_path / "epoch_9.pth")
    _write_fragment(tmp_path / "epoch_10.pth", {"meta": {"epoch": 10}, "w": torch.ones(1000)})
    torch.save({"x": _RunsCode(tmp_path / "ran")}, tmp_path / "epoch_11.pth")
    torch.save({"meta": {"epoch": 12}}, tmp_path / "best_acc_epoch_12.pth")  # weights only
    _write_fragment(tmp_path / "epoch_13.pth.tmp", {"w": torch.ones(1000)})
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_13.pth"))

    with _mmengine_log() as lines:
        found = find_resumable_checkpoint(str(tmp_path))

    # numeric order: epoch_9 is older than epoch_10, so every newer file was looked at first
    assert found == str(tmp_path / "epoch_9.pth")
    for skipped in ("epoch_13.pth", "epoch_10.pth", "epoch_11.pth"):
        assert len(_warnings_naming(lines, skipped)) == 1, lines
    assert "system" in _warnings_naming(lines, "epoch_11.pth")[0]  # the refused global
    assert not (tmp_path / "ran").exists()


def test_resume_search_follows_a_moved_work_dir_and_reports_an_empty_one(tmp_path):
    torch.save({"meta": {"epoch": 1}}, tmp_path / "epoch_1.pth")
    (tmp_path / "last_checkpoint").write_text("/elsewhere/work_dirs/run/epoch_1.pth")
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / "epoch_1.pth")

    empty = tmp_path / "fresh"
    empty.mkdir()
    with _mmengine_log() as lines:
        assert find_resumable_checkpoint(str(empty)) is None
    assert any(str(empty) in line for line in lines)


# -- explicit --resume PATH / load_from ------------------------------------------------------


@pytest.mark.parametrize("kind", ["truncated", "empty", "not_torch", "runs_code"])
def test_unusable_checkpoint_is_refused_with_a_way_out(tmp_path, kind):
    torch.save({"meta": {"epoch": 3}}, tmp_path / "epoch_3.pth")
    bad = tmp_path / "epoch_4.pth"
    if kind == "truncated":
        _write_fragment(bad, {"w": torch.ones(1000)})
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "not_torch":
        bad.write_text("model: edgenext\n")
    else:
        torch.save({"x": _RunsCode(tmp_path / "ran")}, bad)

    with pytest.raises(PreflightError) as info:
        check_checkpoint_readable(str(bad), "checkpoint to resume from")
    message = str(info.value)
    assert str(bad) in message
    assert "epoch_3.pth" in message  # the checkpoint that does load
    assert "weights_only=False" not in message
    assert "Traceback" not in message and "\n" not in message
    if kind == "runs_code":
        assert "system" in message and not (tmp_path / "ran").exists()
    check_checkpoint_readable(str(tmp_path / "epoch_3.pth"))  # a good one passes
