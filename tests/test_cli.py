"""The `zoo` console script and the one import root: fast help, one-line errors for the
project's own errors only, quiet TensorFlow, and no top-level `callbacks`/`tasks` modules."""

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import zoo.cli
from zoo.errors import CorruptFileError, DivergenceError, UsageError

REPOSITORY = Path(__file__).resolve().parents[1]


def python(code, cwd=None, env=None, timeout=120):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fake_parser(handler):
    parser = argparse.ArgumentParser(prog="zoo")
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(handler=handler, task="demo")
    return parser


@pytest.mark.parametrize(
    "error, code",
    [
        (UsageError("`--learning-rate` must be a finite number, got inf."), 2),
        (CorruptFileError("runs/x/history.csv", "corrupt CSV (bad line 3)"), 2),
        (DivergenceError("the loss became nan at epoch 2, batch 5"), 3),
    ],
)
def test_project_errors_are_one_line(monkeypatch, capsys, error, code):
    def handler(args):
        raise error

    monkeypatch.setattr(zoo.cli, "build_parser", lambda: fake_parser(handler))
    assert zoo.cli.main([]) == code
    err = capsys.readouterr().err
    assert err == f"zoo: error: {error}\n"


def test_other_exceptions_keep_their_traceback(monkeypatch):
    def handler(args):
        raise ValueError("a genuine bug")

    monkeypatch.setattr(zoo.cli, "build_parser", lambda: fake_parser(handler))
    with pytest.raises(ValueError, match="a genuine bug"):
        zoo.cli.main([])


def test_help_imports_no_tensorflow():
    done = python(
        """
        import sys, time
        started = time.perf_counter()
        from zoo.cli import main
        for argv in (["--help"], ["argmax", "--help"], ["deep", "train", "--help"],
                     ["memory-ae", "train", "--help"], ["ibs-vs-lrd", "--help"],
                     ["reasoning-ops", "run", "--help"]):
            try:
                main(argv)
            except SystemExit as exit:
                assert exit.code == 0, argv
        heavy = ("tensorflow", "keras", "pandas", "matplotlib")
        heavy = sorted(m for m in heavy if m in sys.modules)
        print("HEAVY", heavy, "SECONDS", time.perf_counter() - started)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY [] SECONDS" in done.stdout, done.stdout[-2000:]


def test_help_is_fast_from_the_console_script():
    script = Path(sys.executable).with_name("zoo")
    started = time.perf_counter()
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0 and "reasoning-ops" in done.stdout
    assert elapsed < 3.0  # under 1 s on an idle machine; loose here, the suite shares the cores


@pytest.mark.slow  # a fresh process importing TensorFlow: seconds of CPU
def test_user_modules_named_callbacks_and_tasks_do_not_shadow_the_library(tmp_path):
    (tmp_path / "callbacks.py").write_text(
        "raise ImportError('the user callbacks.py was imported')\n"
    )
    (tmp_path / "tasks.py").write_text("raise ImportError('the user tasks.py was imported')\n")
    done = python(
        """
        from zoo.callbacks import ExpDecay, IncreasingBatchSize, SignSGD
        from zoo.tasks.argmax import ArgMaxNet
        import importlib.util
        print(SignSGD.__module__, ArgMaxNet.__module__.split(".")[:2])
        print(importlib.util.find_spec("callbacks").origin)
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "zoo.callbacks.sign_sgd ['zoo', 'tasks']"
    assert lines[1] == str(tmp_path / "callbacks.py")  # the user's own module, untouched


def test_no_top_level_callbacks_or_tasks_is_installed(tmp_path):
    done = python(
        """
        import importlib.util
        print(importlib.util.find_spec("callbacks"), importlib.util.find_spec("tasks"))
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip() == "None None", done.stdout + done.stderr


@pytest.mark.slow  # a fresh process importing TensorFlow: seconds of CPU
def test_import_zoo_alone_loads_a_saved_model_in_a_fresh_process(tmp_path):
    import keras
    import numpy as np

    from zoo.callbacks import SignSGD
    from zoo.layers import ResidualBlock

    inputs = keras.Input((5,))
    model = keras.Model(inputs, ResidualBlock(7)(inputs))
    model.compile(SignSGD(learning_rate=1e-3, momentum=0.9), "mse")
    model.save(tmp_path / "model.keras")
    x = np.linspace(-1, 1, 10, dtype="float32").reshape(2, 5)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    for order in ("import zoo\nimport keras", "import keras\nimport zoo"):
        done = python(
            order
            + f"""
import numpy as np
model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
x = np.linspace(-1, 1, 10, dtype="float32").reshape(2, 5)
expected = np.load({str(tmp_path / "expected.npy")!r})
np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
print(type(model.optimizer).__name__)
""",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().endswith("SignSGD")


def test_importing_one_task_module_registers_every_zoo_class():
    done = python(
        """
        import zoo.runs
        import zoo.tasks.argmax.training  # imports Keras from inside a zoo module
        from keras.saving import get_registered_object
        from zoo._registry import SERIALIZABLE_MODULES
        names = ["zoo>SetMinAE", "zoo>ReasoningNet", "zoo>DeepMNIST", "zoo>SimpleCNN",
                 "zoo>SignSGD", "zoo>DeepResidualCore", "zoo>SetMinRandomLoss"]
        print([name for name in names if get_registered_object(name) is None])
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_every_registered_class_lives_in_a_listed_module():
    import subprocess as sp

    from zoo._registry import SERIALIZABLE_MODULES

    files = sp.run(
        ["git", "grep", "-l", "register_keras_serializable", "--", "*.py"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    ).stdout.split()
    prefixes = {"callbacks/": "zoo.callbacks.", "tasks/": "zoo.tasks.", "zoo/": "zoo."}
    for path in files:
        if path.startswith("tests/") or path == "zoo/_registry.py":
            continue
        top = next(prefix for prefix in prefixes if path.startswith(prefix))
        module = prefixes[top] + path[len(top) : -3].replace("/", ".")
        assert any(
            module == name or module.startswith(name + ".") for name in SERIALIZABLE_MODULES
        ), f"{module} registers classes but is not listed"


def test_import_tensorflow_quietly_prints_nothing():
    done = python(
        """
        from zoo.tf_quiet import import_tensorflow
        tf = import_tensorflow()
        print(tf.reduce_sum(tf.ones(3)).numpy())
        """,
        env={"TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert done.returncode == 0 and done.stdout.strip() == "3.0"
    assert done.stderr == "", done.stderr


@pytest.mark.slow  # a fresh process importing TensorFlow: seconds of CPU
def test_a_compiling_training_run_prints_no_tensorflow_lines(tmp_path):
    """TensorFlow's C++ logging (absl, oneDNN, CUDA, XLA's service lines at the first compile)
    stays off stderr for a whole run, not only at import; `--verbose` lets it through."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "zoo.cli"]
    flags = ["argmax", "train", "--episodes", "1", "--steps-per-episode", "20"]
    flags += ["--eval-batches", "1", "--quiet"]
    quiet = subprocess.run(
        [*command, *flags, "--run", str(tmp_path / "quiet")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    loud = subprocess.run(
        [*command, "--verbose", *flags, "--run", str(tmp_path / "loud")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.strip(), "--verbose should keep TensorFlow's start-up lines"


# Requirements checked before any handler runs: extras, backend (zoo.cli.COMMAND_NEEDS).

MISSING_EXTRA_CASES = [
    ("tensorflow_datasets", ["deep", "train"], "datasets"),
    ("tensorflow_datasets", ["memory-ae", "train", "--epochs", "1"], "datasets"),
    ("tensorflow_datasets", ["ibs-vs-lrd", "run"], "datasets"),
    ("keras_tuner", ["argmax", "tune"], "tuner"),
    ("keras_tuner", ["reasoning-ops", "run"], "tuner"),
]


@pytest.mark.parametrize("module, argv, extra", MISSING_EXTRA_CASES)
def test_a_missing_extra_is_one_line_before_any_folder(
    monkeypatch, tmp_path, capsys, module, argv, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import fails
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    with pytest.raises(ImportError):
        __import__(module)
    code = zoo.cli.main([*argv, "--run", str(run)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"zoo: error: `zoo {argv[0]} {argv[1]}` needs {module} (not installed): "
        f'pip install "experiment-zoo[{extra}]".\n'
    )
    assert not run.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_extra_in_a_fresh_process_is_one_line(tmp_path):
    """The console script as a user meets it: no traceback, no folder, exit 2, fast."""
    completed = python(
        """
        import sys
        sys.modules["tensorflow_datasets"] = None
        from zoo.cli import main
        sys.exit(main(["deep", "train", "--run", "run"]))
        """,
        cwd=tmp_path,
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        "zoo: error: `zoo deep train` needs tensorflow_datasets (not installed): "
        'pip install "experiment-zoo[datasets]".\n'
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [["argmax", "train"], ["deep", "train"], ["memory-ae", "train"], ["ibs-vs-lrd", "run"]],
)
def test_a_task_on_another_backend_is_one_line_before_any_folder(
    monkeypatch, tmp_path, capsys, argv
):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(zoo.cli, "configured_backend", lambda: os.environ["KERAS_BACKEND"])
    monkeypatch.chdir(tmp_path)
    assert zoo.cli.main([*argv, "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"zoo: error: `zoo {argv[0]} {argv[1]}` runs on Keras's TensorFlow")
    assert "configured backend is 'jax'" in err and "KERAS_BACKEND=tensorflow" in err
    assert list(tmp_path.iterdir()) == []


def test_reasoning_ops_report_needs_no_tensorflow_backend():
    assert not zoo.cli.COMMAND_NEEDS[("reasoning-ops", "report")].tensorflow


def test_configured_backend_reads_the_environment_then_keras_json(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert zoo.cli.configured_backend() == "tensorflow"  # Keras's default
    (tmp_path / "keras.json").write_text('{"backend": "torch", "floatx": "float32"}')
    assert zoo.cli.configured_backend() == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert zoo.cli.configured_backend() == "jax"


def test_every_needs_entry_names_a_real_command_and_extra():
    from zoo.extras import EXTRAS

    parser = zoo.cli.build_parser()
    tasks = parser._subparsers._group_actions[0].choices
    for (task, command), needs in zoo.cli.COMMAND_NEEDS.items():
        assert task in tasks, task
        if command is None:  # a command without subcommands (`zoo presets`)
            continue
        commands = tasks[task]._subparsers._group_actions[0].choices
        assert command in commands, (task, command)
        assert set(needs.extras) <= set(EXTRAS), needs


def test_import_zoo_does_not_choose_the_backend():
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    completed = subprocess.run(
        [sys.executable, "-c", "import os, zoo, zoo.cli; print(os.environ.get('KERAS_BACKEND'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "None"


def test_a_training_command_prints_its_first_line_before_tensorflow_loads(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # importing TensorFlow now fails
        "from zoo.cli import main\n"
        f"main(['memory-ae', 'train', '--run', {str(tmp_path / 'run')!r}])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.splitlines()[0] == "zoo memory-ae train: starting; TensorFlow loads next"
