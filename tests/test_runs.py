"""The run-folder contract (`zoo.runs`), config flags (`zoo.config`) and checks
(`zoo.validation`): ownership, locking, resume rules, atomic files, checkpoints, faults."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from zoo.config import add_config_arguments, config_from_args, given_flags
from zoo.errors import (
    CorruptFileError,
    ResumeMismatchError,
    RunFolderError,
    UsageError,
)
from zoo.runs import RunFolder, load_npz, matplotlib_agg, read_csv, read_json
from zoo.validation import check_choice, check_float, check_non_negative_int, check_positive_int

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class DemoConfig:
    episodes: int = dataclasses.field(default=100, metadata={"help": "episodes", "extends": True})
    learning_rate: float = 1e-4
    recipe: str = dataclasses.field(default="seed", metadata={"choices": ("seed", "improved")})
    in_memory: bool = False
    datasets: tuple = ("one_hot", "random")

    def __post_init__(self):
        check_positive_int("--episodes", self.episodes)
        check_float("--learning-rate", self.learning_rate, low=0, low_inclusive=False)


def open_run(path, config=None, given=None, task="demo", **kwargs):
    config = config or DemoConfig()
    return RunFolder.open(path, task, config, given=given, **kwargs)


# --- zoo.validation -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_positive_int_refuses(value):
    with pytest.raises(UsageError, match="`--steps` must be a positive integer"):
        check_positive_int("--steps", value)


def test_checks_accept_and_convert():
    assert check_positive_int("n", np.int64(3)) == 3 and isinstance(check_positive_int("n", 3), int)
    assert check_non_negative_int("n", 0) == 0
    assert check_float("lr", 1) == 1.0
    assert check_choice("kind", "a", ("a", "b")) == "a"


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (float("nan"), {}, "finite"),
        (float("inf"), {}, "finite"),
        (-float("inf"), {"low": 0}, "finite"),
        (0.0, {"low": 0, "low_inclusive": False}, r"in \(0, inf\]"),
        (1.0, {"low": 0, "high": 1, "high_inclusive": False}, r"in \[0, 1\)"),
        ("0.1", {}, "a number"),
    ],
)
def test_float_check_refuses_non_finite_and_out_of_range(value, kwargs, message):
    with pytest.raises(UsageError, match=message):
        check_float("--momentum", value, **kwargs)


def test_usage_error_is_a_value_error():
    with pytest.raises(ValueError):
        check_choice("--kernels", "fast", ("auto", "xla"))


# --- zoo.config -------------------------------------------------------------------------------


def test_flags_from_a_config_dataclass():
    parser = add_config_arguments(argparse.ArgumentParser(), DemoConfig)
    argv = ["--episodes", "3", "--learning-rate", "0.5", "--recipe", "improved", "--in-memory"]
    args = parser.parse_args(argv + ["--datasets", "one_hot,many_hot"])
    assert config_from_args(DemoConfig, args) == DemoConfig(
        3, 0.5, "improved", True, ("one_hot", "many_hot")
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--recipe", "other"])
    with pytest.raises(UsageError, match="--episodes"):
        config_from_args(DemoConfig, parser.parse_args(["--episodes", "0"]))


def test_only_flags_given_are_reported():
    parser = add_config_arguments(argparse.ArgumentParser(), DemoConfig)
    assert given_flags(parser.parse_args([]), DemoConfig) == {}
    assert given_flags(parser.parse_args(["--no-in-memory"]), DemoConfig) == {"in_memory": False}


def test_help_shows_each_default_once():
    parser = add_config_arguments(argparse.ArgumentParser(), DemoConfig)
    text = " ".join(parser.format_help().split())
    assert text.count("(default: 0.0001)") == 1 and "(default: one_hot,random)" in text
    assert "may be raised when resuming (default: 100)" in text


# --- RunFolder.open: ownership, location, lock ---------------------------------------------


def test_new_run_records_task_versions_and_config(tmp_path):
    with open_run(tmp_path / "run", DemoConfig(episodes=3)) as run:
        assert not run.resumed and run.config.episodes == 3
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["task"] == "demo" and record["config"]["episodes"] == 3
    assert set(record["versions"]) == {"zoo", "tensorflow", "keras", "python"}
    assert all(record["versions"].values())


def test_no_path_gives_a_new_stamped_folder(tmp_path):
    with open_run(None, root=tmp_path) as run:
        assert run.path.parent == tmp_path / "demo"


def test_another_tasks_folder_is_refused_untouched(tmp_path):
    open_run(tmp_path / "run").close()
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunFolderError, match="holds a 'demo' run, not a 'deep' run"):
        open_run(tmp_path / "run", task="deep")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_a_file_or_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        open_run(tmp_path / "file")
    with pytest.raises(RunFolderError, match="is a file"):
        open_run(tmp_path / "file" / "run")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="not a zoo run folder"):
        open_run(tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["cat.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_parent_is_refused(tmp_path):
    tmp_path.joinpath("locked").mkdir(mode=0o500)
    with pytest.raises(RunFolderError, match="not writable"):
        open_run(tmp_path / "locked" / "run")


def test_a_second_process_on_the_folder_fails_at_once(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from zoo.runs import RunFolder
        from zoo.errors import RunFolderError
        from tests.test_runs import DemoConfig
        try:
            RunFolder.open({str(tmp_path / "run")!r}, "demo", DemoConfig())
        except RunFolderError as error:
            print(error)
            sys.exit(2)
        """
    )
    with open_run(tmp_path / "run"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPOSITORY,
        )
        assert done.returncode == 2
        assert f"is in use by another process (pid {os.getpid()})" in done.stdout
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPOSITORY
    )
    assert done.returncode == 0, done.stdout + done.stderr  # the lock went with its holder


# --- resume rules ---------------------------------------------------------------------------


def test_resume_keeps_the_saved_config_and_accepts_only_extensions(tmp_path):
    open_run(tmp_path / "run", DemoConfig(episodes=3, learning_rate=0.1)).close()
    # Flags not given take the saved values, whatever the defaults are.
    with open_run(tmp_path / "run", DemoConfig(), given={}) as run:
        assert run.resumed and run.config == DemoConfig(episodes=3, learning_rate=0.1)
    with open_run(tmp_path / "run", DemoConfig(episodes=5), given={"episodes": 5}) as run:
        assert run.config.episodes == 5 and run.config.learning_rate == 0.1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["episodes"] == 5


def test_resume_with_other_settings_names_every_flag_and_changes_nothing(tmp_path):
    open_run(tmp_path / "run", DemoConfig(episodes=3, learning_rate=0.1)).close()
    before = (tmp_path / "run" / "config.json").read_bytes()
    given = {"episodes": 2, "learning_rate": 0.001, "datasets": ("one_hot",)}
    with pytest.raises(ResumeMismatchError) as error:
        open_run(tmp_path / "run", DemoConfig(**given), given=given)
    message = str(error.value)
    assert "--episodes: saved 3, given 2 (may only be raised)" in message
    assert "--learning-rate: saved 0.1, given 0.001" in message
    assert "--datasets: saved one_hot,random, given one_hot" in message
    assert "\n" not in message
    assert (tmp_path / "run" / "config.json").read_bytes() == before


def test_resume_refused_when_asked(tmp_path):
    open_run(tmp_path / "run").close()
    with pytest.raises(RunFolderError, match="already holds a run"):
        open_run(tmp_path / "run", resume=False)


# --- files ----------------------------------------------------------------------------------


def test_metrics_are_valid_json_even_with_non_finite_values(tmp_path):
    with open_run(tmp_path / "run") as run:
        run.update_metrics(loss=float("nan"), err=np.float32(0.25), best=float("inf"))
        run.mark_failed("the loss became nan at epoch 2")
        text = (run.path / "metrics.json").read_text()
        assert "NaN" not in text and "Infinity" not in text
        assert json.loads(text) == {
            "loss": None,
            "err": 0.25,
            "best": None,
            "status": "failed",
            "error": "the loss became nan at epoch 2",
        }
        assert run.status == "failed"


def test_history_rows_and_truncation(tmp_path):
    with open_run(tmp_path / "run") as run:
        for schedule in ("lrd", "ibs"):
            for epoch in (1, 2, 3):
                run.append_history({"schedule": schedule, "epoch": epoch, "loss": 1.0 / epoch})
        run.append_history({"schedule": "ibs", "epoch": 4, "loss": 0.2, "batch_size": 64})
        run.truncate_history("epoch", 2, where={"schedule": "ibs"})
        history = run.history()
    assert list(zip(history["schedule"], history["epoch"])) == [
        ("lrd", 1),
        ("lrd", 2),
        ("lrd", 3),
        ("ibs", 1),
        ("ibs", 2),
    ]
    assert "batch_size" in history


def test_figures_and_models_are_written_whole(tmp_path):
    import keras

    with open_run(tmp_path / "run") as run:
        plt = matplotlib_agg()
        figure, axis = plt.subplots()
        axis.plot([1, 2, 3])
        assert run.save_figure(figure, "curve").read_bytes()[:4] == b"\x89PNG"
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        run.save_model(model)
        restored = run.load_model()
        x = np.ones((1, 2), "float32")
        np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
        assert sorted(p.name for p in run.path.iterdir()) == [
            ".lock",
            "config.json",
            "curve.png",
            "model.keras",
        ]


@pytest.mark.parametrize(
    "name, content, reader, message",
    [
        ("config.json", '{"task": "demo", "config": {', read_json, "corrupt JSON"),
        ("history.csv", 'epoch,loss\n1,0.5\n2,0.4,9,"x\n', read_csv, "corrupt CSV"),
        ("pca.npz", "PK\x03\x04 truncated", load_npz, "corrupt or truncated .npz"),
    ],
)
def test_corrupt_files_are_named(tmp_path, name, content, reader, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CorruptFileError, match=f"{path}: {message}"):
        reader(path)


def test_a_truncated_model_file_is_named(tmp_path):
    import keras

    with open_run(tmp_path / "run") as run:
        run.save_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        data = run.model_path.read_bytes()
        run.model_path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CorruptFileError, match="model.keras: truncated or not a .keras"):
            run.load_model()
        run.model_path.unlink()
        with pytest.raises(CorruptFileError, match="model.keras: missing"):
            run.load_model()


def test_a_corrupt_run_config_is_named_on_open(tmp_path):
    open_run(tmp_path / "run").close()
    (tmp_path / "run" / "config.json").write_text('{"task": "demo"')
    with pytest.raises(CorruptFileError, match="config.json: corrupt JSON"):
        open_run(tmp_path / "run")


# --- checkpoints and crashes ----------------------------------------------------------------


def save_array(value):
    return lambda path: np.save(path, np.array([value]))


def test_checkpoint_commit_keeps_only_the_newest(tmp_path):
    with open_run(tmp_path / "run") as run:
        assert run.load_checkpoint() is None
        run.save_checkpoint(1, save_array(1.0), ".npy", {"wall_seconds": 1.5})
        checkpoint = run.save_checkpoint(2, save_array(2.0), ".npy", {"wall_seconds": 3.0})
        assert run.load_checkpoint() == checkpoint
        assert np.load(checkpoint.path)[0] == 2.0 and checkpoint.state == {"wall_seconds": 3.0}
        assert [p.name for p in (run.path / "checkpoints").iterdir()] == ["ckpt-2.npy"]
        checkpoint.path.unlink()
        with pytest.raises(CorruptFileError, match="ckpt-2.npy: missing"):
            run.load_checkpoint()


CRASHING_TRAINER = textwrap.dedent(
    """
    import dataclasses, sys
    import numpy as np
    from zoo.runs import RunFolder

    @dataclasses.dataclass
    class C:
        steps: int = 6

    with RunFolder.open(sys.argv[1], "demo", C()) as run:
        checkpoint = run.load_checkpoint()
        step, value = 0, 0.0
        if checkpoint is not None:
            step, value = checkpoint.step, float(np.load(checkpoint.path)[0])
        run.truncate_history("step", step)
        while step < 6:
            step += 1
            value = value * 0.5 + step          # the "training"
            run.append_history({"step": step, "value": value})
            run.save_checkpoint(step, lambda p: np.save(p, np.array([value])), ".npy")
        run.mark_finished(value=value)
    """
)


@pytest.mark.parametrize(
    "point, count",
    [
        ("atomic-write-tmp", 1),
        ("atomic-write-tmp", 4),
        ("atomic-write-tmp", 8),
        ("checkpoint-before-commit", 2),
        ("checkpoint-after-commit", 3),
    ],
)
def test_a_kill_at_any_instant_resumes_to_the_uninterrupted_result(tmp_path, point, count):
    script = tmp_path / "trainer.py"
    script.write_text(CRASHING_TRAINER)

    def run(folder, crash=None):
        env = dict(os.environ)
        env.pop("ZOO_TEST_CRASH_AT", None)
        if crash:
            env["ZOO_TEST_CRASH_AT"] = crash
        return subprocess.run(
            [sys.executable, str(script), str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run(tmp_path / "clean").returncode == 0
    assert run(tmp_path / "killed", f"{point}:{count}").returncode == 137
    assert run(tmp_path / "killed").returncode == 0
    clean, killed = (read_csv(tmp_path / name / "history.csv") for name in ("clean", "killed"))
    assert list(killed["step"]) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(killed["value"], clean["value"])
    assert read_json(tmp_path / "killed" / "metrics.json")["status"] == "finished"
    assert [p.name for p in (tmp_path / "killed").rglob("*") if ".tmp" in p.name] == []
