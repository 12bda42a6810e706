"""Fault injection on `zoo reasoning-ops run` / `report`: kill -9 at seeded instants and resume
(the same results as an uninterrupted sweep), two processes on one folder, another task's
folder, resume with other settings, and damaged files of every kind the sweep writes."""

import json
import os
import random
import shutil

import pandas as pd
import pytest

from tests import faults
from zoo.cli import main
from zoo.runs import RunFolder
from zoo.tasks.reasoning_ops import SweepConfig, collect, run_sweep

GRID = {
    "profile": "test",
    "tasks": ("reduce_max",),
    "datasets": ("one_hot",),
    "networks": ("multiply_simple-1-linear", "dense-1-linear"),
}
FLAGS = [
    "--profile",
    "test",
    "--tasks",
    "reduce_max",
    "--datasets",
    "one_hot",
    "--networks",
    "multiply_simple-1-linear,dense-1-linear",
]
COMPARED = [
    "task",
    "dataset",
    "network_type",
    "network_depth",
    "network_activation",
    "accuracy",
    "loss",
    "lr",
    "global_step",
    "diverged_lrs",
    "status",
]


COMMAND = faults.Command("zoo.cli", ("reasoning-ops", "run"), ("--quiet", *FLAGS))


def cli(run, *extra, crash_at=None, timeout=600):
    return faults.launch(COMMAND, run, *extra, crash=crash_at, timeout=timeout)


def results(run):
    frame = collect(run)
    return frame[COMPARED].sort_values(COMPARED[:5]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep's results (run in this process)."""
    path = tmp_path_factory.mktemp("reference") / "sweep"
    config = SweepConfig(**GRID)
    with RunFolder.open(path, "reasoning-ops", config) as run:
        run_sweep(run, config, quiet=True)
    return path


def assert_resumes_to_the_reference(run, reference, crash_at):
    killed = cli(run, crash_at=crash_at)
    assert killed.returncode == 137, (crash_at, killed.stderr[-2000:])
    resumed = cli(run)
    assert resumed.returncode == 0, (crash_at, resumed.stderr[-2000:])
    assert "sweep finished: 2 experiments (0 failed)" in resumed.stdout
    pd.testing.assert_frame_equal(results(run), results(reference))
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
    assert not list(run.rglob(".*.tmp*")), "a stale temporary file was left behind"


@pytest.mark.slow  # 20 s; kills inside writes in the default run: tests/test_lifecycle.py
def test_a_kill_inside_a_seeded_atomic_write_resumes_to_the_same_results(tmp_path, reference):
    # The sweep's atomic writes: config, metrics, oracle, tuner and trial files (about 20 for
    # two experiments); a seeded instant among the first 6, before any experiment has run, so
    # that the killed process is short (the slow tests take later instants).
    instant = random.Random(4).randint(1, 6)
    assert_resumes_to_the_reference(tmp_path / "run", reference, f"atomic-write-tmp:{instant}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash_at",
    [
        "experiment-finished:1",
        "experiment-finished:2",
        "trial-recorded:1",
        "atomic-write-tmp:1",
        *[f"atomic-write-tmp:{n}" for n in random.Random(13).sample(range(2, 20), 3)],
    ],
)
def test_kills_at_seeded_instants_resume_to_the_same_results(tmp_path, reference, crash_at):
    run = tmp_path / "run"
    killed = cli(run, crash_at=crash_at)
    if killed.returncode == 0:  # the sweep has fewer such instants: nothing to resume
        pd.testing.assert_frame_equal(results(run), results(reference))
        return
    assert killed.returncode == 137, killed.stderr[-2000:]
    resumed = cli(run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    pd.testing.assert_frame_equal(results(run), results(reference))


def test_a_second_process_on_the_folder_exits_at_once(tmp_path):
    run = tmp_path / "run"
    with RunFolder.open(run, "reasoning-ops", SweepConfig(**GRID)):  # this process holds it
        second = cli(run, timeout=120)
    assert second.returncode == 2
    errors = [line for line in second.stderr.splitlines() if line.startswith("zoo:")]
    assert errors == [f"zoo: error: --run {run} is in use by another process (pid {os.getpid()})."]
    assert not (run / "sweep").exists()


def test_another_tasks_folder_is_refused_by_run_and_report(tmp_path, capsys):
    run = tmp_path / "argmax-run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"task": "argmax", "versions": {}, "config": {"episodes": 3}})
    )
    before = sorted(path.name for path in run.iterdir())
    assert main(["reasoning-ops", "run", "--run", str(run), *FLAGS]) == 2
    assert main(["reasoning-ops", "report", "--run", str(run)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("holds a 'argmax' run" in line for line in errors)
    assert sorted(path.name for path in run.iterdir() if path.name != ".lock") == before


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--profile", "quick"], "--profile: saved 'test', given 'quick'"),
        (["--tasks", "dot"], "--tasks: saved reduce_max, given dot"),
        (["--datasets", "random"], "--datasets: saved one_hot, given random"),
        (
            ["--networks", "dense-2-relu"],
            "--networks: saved multiply_simple-1-linear,dense-1-linear, given dense-2-relu",
        ),
        (["--seed", "7"], "--seed: saved 0, given 7"),
    ],
)
def test_resume_with_other_settings_is_one_line_and_changes_nothing(tmp_path, capsys, flags, named):
    run = tmp_path / "run"
    with RunFolder.open(run, "reasoning-ops", SweepConfig(**GRID)):
        pass
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.name != ".lock"}
    assert main(["reasoning-ops", "run", "--run", str(run), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and named in error
    after = {path.name: path.read_bytes() for path in run.iterdir() if path.name != ".lock"}
    assert after == before


def damage(path, how):
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.write_bytes(b"\x00\xffnot json at all")


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_damaged_trial_files_are_named_by_report_and_run(tmp_path, reference, capsys, how):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    trials = sorted(run.glob("sweep/trial_*/trial.json"))
    for path in trials:
        damage(path, how)
    assert main(["reasoning-ops", "report", "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and all(str(path) in error for path in trials)
    assert not (run / "results.csv").exists()  # nothing written from a partial sweep
    (run / "metrics.json").unlink()  # so that `run` resumes instead of saying "finished"
    assert main(["reasoning-ops", "run", "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(trials[0]) in error


@pytest.mark.parametrize(
    "name", ["config.json", "metrics.json", "sweep/oracle.json", "sweep/tuner0.json"]
)
def test_every_other_damaged_json_is_named(tmp_path, reference, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    if name != "metrics.json":
        (run / "metrics.json").unlink()
    damage(run / name, "truncated")
    assert main(["reasoning-ops", "run", "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(run / name) in error


def test_a_damaged_results_csv_is_named(tmp_path, capsys):
    results_csv = tmp_path / "broken_results.csv"
    results_csv.write_text('task,dataset\n"unterminated,\n')
    assert main(["reasoning-ops", "report", "--results", str(results_csv)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(results_csv) in error
