"""Training killed with SIGKILL at random moments, mid-write included, many times: every resume
finds a complete checkpoint and loses at most one epoch (the crash-safe saves of
``edgenext_dense.compat`` and ``find_resumable_checkpoint``).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from test_checkpoint_safety import _warnings_in, _write_fragment

from edgenext_dense.engine.preflight import unreadable_reason

REPO = Path(__file__).resolve().parents[2]


# -- the real thing: SIGKILL at random moments -----------------------------------------------

# Each training run is a process forked from this server, which has imported the stack once:
# importing torch, mmdet and edgenext_dense is most of a fresh interpreter's start-up, and 20
# of them would make the test slow. The server never runs torch ops, so forking it is safe.
_SERVER = '''
"""Forks a toy training run (~16 MB model, as tools/train.py --resume runs it) per input line."""
import os
import signal
import sys
import traceback

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import edgenext_dense  # noqa: F401  (applies the crash-safe checkpoint patches)
from edgenext_dense.engine.checkpointing import find_resumable_checkpoint

WIDTH = 1024  # 4 x 1024 x 1024 float32: 16 MB of weights, 32 MB with SGD momentum


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(4)])

    def forward(self, x, mode="tensor"):
        out = self.layers(x)
        return {"loss": out.pow(2).mean()} if mode == "loss" else [out]


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"x": torch.full((WIDTH,), i / 4)}


class Trained(Hook):
    priority = "NORMAL"  # runs before CheckpointHook (VERY_LOW) saves the epoch

    def before_train(self, runner):
        print(f"START {runner.epoch}", flush=True)

    def after_train_epoch(self, runner):
        print(f"TRAINED {runner.epoch + 1}", flush=True)


class Saved(Hook):
    priority = "LOWEST"  # runs after CheckpointHook saved the epoch

    def before_save_checkpoint(self, runner, checkpoint):
        print(f"SAVING {runner.epoch + 1}", flush=True)

    def after_train_epoch(self, runner):
        print(f"SAVED {runner.epoch + 1}", flush=True)


def train(work_dir, max_epochs):
    torch.set_num_threads(1)
    load_from = find_resumable_checkpoint(work_dir)
    Runner(
        model=Toy(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=Data(),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=2,
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=1e-3, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=1)),
        custom_hooks=[Trained(), Saved()],
        resume=load_from is not None,
        load_from=load_from,
    ).train()


signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed runs
for line in sys.stdin:
    work_dir, max_epochs, log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            train(work_dir, int(max_epochs))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            print(f"EXIT {code}", flush=True)
            os._exit(code)
    print(pid, flush=True)
'''

KILLS = 20
MAX_EPOCHS = 50
WAIT_S = 60.0  # for one run to start or to finish


def _wait_for(predicate, timeout: float = WAIT_S, poll: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def _events(log: Path) -> Dict[str, List[int]]:
    found: Dict[str, List[int]] = {k: [] for k in ("START", "TRAINED", "SAVING", "SAVED", "EXIT")}
    text = log.read_text() if log.exists() else ""
    for name, value in re.findall(r"^([A-Z]+) (\d+)$", text, re.M):
        found[name].append(int(value))
    return found


class _Runs:
    """Starts training runs through the server and kills them."""

    def __init__(self, tmp_path: Path) -> None:
        script = tmp_path / "train_server.py"
        script.write_text(textwrap.dedent(_SERVER))
        self.server = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            text=True,
        )

    def start(self, work_dir: Path, log: Path) -> int:
        self.server.stdin.write(f"{work_dir}\t{MAX_EPOCHS}\t{log}\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        assert line.strip().isdigit(), f"the training server died: {line!r}"
        return int(line)

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    @staticmethod
    def kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not _Runs.alive(pid))

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=WAIT_S)


def _resumed_epoch(log: Path) -> int:
    """The epoch a restarted run continues from, once it has loaded its checkpoint."""
    _wait_for(lambda: _events(log)["START"] or _events(log)["EXIT"])
    assert _events(log)["START"], f"the run did not start:\n{log.read_text()}"
    return _events(log)["START"][0]


def _assert_work_dir_is_resumable(work_dir: Path) -> None:
    """What the user finds after a kill: only complete checkpoints, a pointer to one of them."""
    for path in work_dir.glob("*.pth"):
        assert unreadable_reason(str(path)) is None, f"fragment under a final name: {path}"
    pointer = work_dir / "last_checkpoint"
    if pointer.exists():
        named = pointer.read_text().strip()
        assert unreadable_reason(named) is None, f"last_checkpoint names {named}"


def _plant_mmengine_wreckage(work_dir: Path) -> Dict[str, Path]:
    """What mmengine alone leaves: a fragment and ``last_checkpoint`` naming a removed file."""
    fragment = work_dir / f"epoch_{MAX_EPOCHS + 1}.pth"
    _write_fragment(fragment, {"w": torch.ones(100000)})
    missing = work_dir / f"epoch_{MAX_EPOCHS + 2}.pth"
    (work_dir / "last_checkpoint").write_text(str(missing))
    return {"fragment": fragment, "missing": missing}


def _assert_wreckage_skipped(planted: Dict[str, Path], log: Path, runs: _Runs, pid: int) -> None:
    """The restarted run named both unusable files; clear them once it has saved anew."""
    assert _warnings_in(log, planted["missing"].name), log.read_text()
    assert _warnings_in(log, planted["fragment"].name), log.read_text()
    planted["fragment"].unlink()
    pointer = planted["missing"].parent / "last_checkpoint"
    _wait_for(lambda: planted["missing"].name not in pointer.read_text() or not runs.alive(pid))


def _kill_at_random_moment(runs: _Runs, pid: int, log: Path, rng: random.Random) -> None:
    """Half the kills after a random delay, half while the run writes its first checkpoint."""
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, 0.5))
    else:
        _wait_for(lambda: bool(_events(log)["SAVING"]) or not runs.alive(pid))
        time.sleep(rng.uniform(0.0, 0.02))
    runs.kill(pid)


@pytest.mark.slow
def test_training_killed_many_times_loses_at_most_one_epoch_per_kill(tmp_path):
    work_dir = tmp_path / "work_dir"
    rng = random.Random(0)
    trained = saved = 0  # the most epochs reported trained / saved by the killed runs
    mid_write = 0
    runs = _Runs(tmp_path)
    try:
        for life in range(KILLS + 1):
            log = tmp_path / f"run_{life}.log"
            planted = _plant_mmengine_wreckage(work_dir) if life == KILLS // 2 else {}
            began = time.time()
            pid = runs.start(work_dir, log)
            try:
                resumed = _resumed_epoch(log)
                assert resumed >= saved, f"run {life} lost a saved epoch:\n{log.read_text()}"
                assert resumed >= trained - 1, f"run {life} lost more than one epoch"
                if planted:
                    _assert_wreckage_skipped(planted, log, runs, pid)
                if life == KILLS:
                    assert _wait_for(lambda log=log: _events(log)["EXIT"]), "no end of training"
                    break
                _kill_at_random_moment(runs, pid, log, rng)
            finally:
                runs.kill(pid)
            mid_write += any(p.stat().st_mtime >= began for p in work_dir.glob("*.tmp"))
            events = _events(log)
            trained = max([trained, *events["TRAINED"]])
            saved = max([saved, *events["SAVED"]])
            _assert_work_dir_is_resumable(work_dir)
    finally:
        runs.close()

    assert _events(log)["EXIT"] == [0], log.read_text()
    final = work_dir / f"epoch_{MAX_EPOCHS}.pth"
    assert torch.load(final, weights_only=True)["meta"]["epoch"] == MAX_EPOCHS
    assert Path((work_dir / "last_checkpoint").read_text()).name == final.name
    assert [p.name for p in work_dir.glob("*.pth")] == [final.name]  # max_keep_ckpts=1
    assert mid_write >= 3, f"only {mid_write} kills landed while a checkpoint was written"
