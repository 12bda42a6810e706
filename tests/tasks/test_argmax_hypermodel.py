"""`ArgMaxHyperModel` and `zoo argmax tune`: every candidate within the budget, a user's own
search in a few lines (the README's snippet, run here), and searches that cannot be mixed."""

import json
import os
import subprocess
import sys
import textwrap

import keras_tuner
import pandas as pd
import pytest

from zoo.cli import main
from zoo.errors import UsageError
from zoo.tasks.argmax import ArgMaxHyperModel, count_parameters

# The README's snippet, verbatim; the test shrinks the numbers marked below.
README_SNIPPET = """\
import keras_tuner
from zoo.tasks.argmax import ArgMaxHyperModel, score_dataset

tuner = keras_tuner.RandomSearch(
    ArgMaxHyperModel(budget=2000), objective=keras_tuner.Objective("val_err", "min"),
    max_trials=20, directory="my-search", project_name="argmax")
tuner.search(score_dataset(250, 3000, seed=0), epochs=1, steps_per_epoch=3000,
             validation_data=score_dataset(500, 10, seed=1), verbose=0)
best_model = tuner.get_best_models(1)[0]
"""


def test_readme_snippet_runs_a_search_within_the_budget(tmp_path, monkeypatch):
    assert len(README_SNIPPET.splitlines()) <= 10
    tiny = README_SNIPPET.replace("max_trials=20", "max_trials=2").replace("3000", "20")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(tiny, "README snippet", "exec"), namespace)
    tuner, best = namespace["tuner"], namespace["best_model"]
    assert len(tuner.oracle.trials) == 2
    assert best.count_params() <= 2000
    assert (tmp_path / "my-search" / "argmax").is_dir()


@pytest.mark.parametrize("seed", range(5))
def test_every_sampled_candidate_is_within_the_budget(seed):
    hypermodel = ArgMaxHyperModel(budget=1500, max_depth=4)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)  # registers the space
    space = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_err", "min"),
        max_trials=1,
        hyperparameters=hp,
        seed=seed,
    )
    values = space.populate_space("0")["values"]
    sample = keras_tuner.HyperParameters()
    hypermodel.build(sample)
    for name, value in values.items():
        sample.values[name] = value
    depth, hidden, block = hypermodel.architecture(sample)
    model = hypermodel.build(sample)
    assert (model.depth, model.hidden, model.block) == (depth, hidden, block)
    assert model.count_params() == count_parameters(depth, hidden, block) <= 1500
    assert 1e-4 <= float(model.optimizer.learning_rate) <= 1e-2


def test_the_widest_candidate_fills_the_budget():
    hypermodel = ArgMaxHyperModel()
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hp.values.update({"depth": 3, "block": "residual", "width_fraction": 1.0})
    assert hypermodel.architecture(hp) == (3, 60, "residual")


def test_bad_hypermodel_arguments():
    with pytest.raises(UsageError, match="budget"):
        ArgMaxHyperModel(budget=100)
    with pytest.raises(UsageError, match="blocks"):
        ArgMaxHyperModel(blocks=("conv",))
    with pytest.raises(UsageError, match="learning_rates"):
        ArgMaxHyperModel(learning_rates=(1e-2, 1e-3))
    hypermodel = ArgMaxHyperModel(steps_per_execution=7)
    with pytest.raises(UsageError, match="steps_per_epoch"):
        hypermodel.fit(None, None, steps_per_epoch=10)


def tune(*flags):
    return main(
        [
            "argmax",
            "tune",
            "--quiet",
            "--budget",
            "2000",
            "--steps",
            "20",
            "--validation-batches",
            "2",
            *flags,
        ]
    )


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A finished two-trial search."""
    path = tmp_path_factory.mktemp("tune") / "search"
    assert tune("--run", str(path), "--trials", "2", "--seed", "3") == 0
    return path


def test_tune_writes_every_trial_and_refuses_to_mix_searches(search, tmp_path, capsys):
    frame = pd.read_csv(search / "trials.csv")
    assert len(frame) == 2 and set(frame["status"]) == {"COMPLETED"}
    assert (frame["parameters"] <= 2000).all()
    for _, row in frame.iterrows():
        assert row["parameters"] == count_parameters(row["depth"], row["hidden"], row["block"])
    record = json.loads((search / "config.json").read_text())
    assert record["task"] == "argmax-tune" and record["config"]["seed"] == 3
    assert json.loads((search / "metrics.json").read_text())["status"] == "finished"
    capsys.readouterr()
    before = (search / "trials.csv").read_bytes()

    # The same --run again is not a silent reload.
    assert tune("--run", str(search), "--trials", "2", "--seed", "3") == 2
    assert "--resume" in capsys.readouterr().err
    # Resuming with other settings: one line naming each difference; trials.csv unchanged.
    assert tune("--resume", str(search), "--steps", "30", "--budget", "2500") == 2
    err = capsys.readouterr().err
    assert "--steps: saved 20, given 30" in err and "--budget: saved 2000, given 2500" in err
    assert err.count("\n") == 1
    assert main(["argmax", "tune", "--resume", str(search), "--max-depth", "3"]) == 2
    assert "--max-depth: saved 6, given 3" in capsys.readouterr().err
    assert main(["argmax", "tune", "--resume", str(search), "--seed", "4"]) == 2
    assert "--seed: saved 3, given 4" in capsys.readouterr().err
    assert (search / "trials.csv").read_bytes() == before
    assert main(["argmax", "tune", "--resume", str(tmp_path / "none")]) == 2
    assert "holds no search" in capsys.readouterr().err


@pytest.mark.slow
def test_more_trials_continue_the_same_search(search, tmp_path):
    import shutil

    frame = pd.read_csv(search / "trials.csv")
    search = shutil.copytree(search, tmp_path / "copy")
    assert main(["argmax", "tune", "--resume", str(search), "--trials", "3", "--quiet"]) == 0
    more = pd.read_csv(search / "trials.csv")
    assert len(more) == 3
    assert set(frame["trial"]) < set(more["trial"])


def test_without_keras_tuner_the_task_works_and_tune_names_the_extra(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["keras_tuner"] = None  # as if the `tuner` extra were not installed
        from zoo.cli import main
        from zoo.tasks.argmax import ArgMaxHyperModel, ArgMaxNet, MissingExtraError
        assert ArgMaxNet().count_params() == 3821
        try:
            ArgMaxHyperModel()
        except MissingExtraError as error:
            assert "experiment-zoo[tuner]" in str(error), error
        else:
            raise AssertionError("ArgMaxHyperModel() without keras-tuner")
        sys.exit(main(["argmax", "tune", "--run", {str(tmp_path / "search")!r}]))
    """)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo:")]
    assert lines == [
        "zoo: error: `zoo argmax tune` needs keras_tuner (not installed): "
        'pip install "experiment-zoo[tuner]".'
    ]
    assert not (tmp_path / "search").exists()
