"""The one fault harness every fault suite uses: launch a training command in a fresh process
(optionally killed at a crash point, or sent a signal), resume it, and compare the run with an
uninterrupted one; damage a run's files the ways a disk or a user does.

A `Command` is how to start one experiment's training from the command line: the toy's
`python -m tests.toy_experiment train`, or `python -m zoo.cli <task> train`, with its flags.
"""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CRASH_EXIT = 137


@dataclasses.dataclass(frozen=True)
class Command:
    """A training command: `python -m <module> <*prefix> --run RUN <*flags>`.

    Args:
        module: the module run with `python -m` (`"zoo.cli"`, `"tests.toy_experiment"`).
        prefix: the words before the flags (`("argmax", "train")`).
        flags: the run's flags, without `--run`.
    """

    module: str
    prefix: Sequence[str]
    flags: Sequence[str] = ()

    def argv(self, run, *extra: str) -> list:
        return [sys.executable, "-m", self.module, *self.prefix, "--run", str(run), *self.flags,
                *extra]  # fmt: skip

    def with_flags(self, *flags: str) -> "Command":
        return dataclasses.replace(self, flags=tuple(flags))


def environment(crash: Optional[str] = None, **extra: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("ZOO_TEST_CRASH_AT", None)
    if crash:
        env["ZOO_TEST_CRASH_AT"] = crash
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def launch(command: Command, run, *extra: str, crash=None, env=None, timeout=600):
    """Runs the command to its end; `crash="point:n"` kills it (exit 137) at that crash point."""
    return subprocess.run(
        command.argv(run, *extra),
        env=environment(crash, **(env or {})),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def zoo(*args: str, crash=None, env=None, timeout=600):
    """`python -m zoo.cli *args` in a fresh process (`crash` as in `launch`)."""
    return subprocess.run(
        [sys.executable, "-m", "zoo.cli", *args],
        env=environment(crash, **(env or {})),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kill_and_resume(command: Command, run, crash: str):
    """Kills a run at `crash`, then runs the same command again; returns the second result."""
    killed = launch(command, run, crash=crash)
    assert killed.returncode == CRASH_EXIT, killed.stderr[-3000:]
    resumed = launch(command, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return resumed


def signal_after(command: Command, run, number: int, *, after_lines: int = 1, times: int = 1):
    """Starts the command, sends it signal `number` (`times` times) once it has printed
    `after_lines` lines on stdout (it has started training), and waits for it; returns
    `(returncode, stdout, stderr)`."""
    process = subprocess.Popen(
        command.argv(run),
        env=environment(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    while len(lines) < after_lines:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    for _ in range(times):
        process.send_signal(number)
        time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, "".join(lines) + stdout, stderr


def sigkill_after(command: Command, run, seconds: float) -> None:
    """Starts the command and kills it with SIGKILL after `seconds`."""
    process = subprocess.Popen(
        command.argv(run),
        env=environment(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_same_run(
    run, reference, *, model_files: Sequence[str] = ("model.keras",), ignore=("wall_seconds",)
):
    """The run's history equals the reference's (every column but `ignore`, bit for bit; no
    row lost or repeated) and so do the weights of its saved models."""
    import keras

    run, reference = Path(run), Path(reference)
    got = pd.read_csv(run / "history.csv", float_precision="round_trip")
    want = pd.read_csv(reference / "history.csv", float_precision="round_trip")
    assert len(got) == len(want), (len(got), len(want))
    columns = [column for column in want if column not in ignore]
    pd.testing.assert_frame_equal(got[columns], want[columns], check_exact=True)
    for name in model_files:
        got_weights = keras.saving.load_model(run / name).get_weights()
        want_weights = keras.saving.load_model(reference / name).get_weights()
        assert len(got_weights) == len(want_weights)
        for got_weight, want_weight in zip(got_weights, want_weights):
            np.testing.assert_array_equal(got_weight, want_weight)


def copy_run(run, destination) -> Path:
    shutil.copytree(run, destination)
    return Path(destination)


# --- damage -----------------------------------------------------------------------------------


def truncate(path) -> None:
    """Cuts a file to half its length, as a crash of a non-atomic writer would."""
    path = Path(path)
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def garble(path) -> None:
    """Overwrites a file's middle with bytes that are not what was written."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b"\x00\xff" * 8
    path.write_bytes(bytes(data))


def tear_history_row(path, row: int = 1) -> None:
    """Empties committed row `row` (0-based) of a history CSV after its second cell
    (`2,5.887993,,`), the damage a torn write leaves inside the committed rows."""
    path = Path(path)
    lines = path.read_text().splitlines()
    width = len(lines[0].split(","))
    torn = ",".join(lines[1 + row].split(",")[:2] + [""] * (width - 2))
    path.write_text("\n".join(lines[: 1 + row] + [torn] + lines[2 + row :]) + "\n")


def metrics(run) -> dict:
    import json

    return json.loads((Path(run) / "metrics.json").read_text())
