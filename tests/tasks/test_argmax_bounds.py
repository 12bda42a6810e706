"""`zoo argmax` refuses what it cannot do in one line (exit 2), before any folder is made or
memory allocated: every numeric flag has a bound, and sizes are checked against this
machine's available memory (faked with `ZOO_FAKE_AVAILABLE_MEMORY`)."""

import keras
import pytest

from zoo.cli import main
from zoo.errors import ResourceError
from zoo.tasks.argmax import ArgMaxConfig, ArgMaxNet, memory_needed, require_memory_for

GB = 10**9


def assert_refused(argv, name, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and err.count("\n") == 1, err
    assert name in err, err
    return err


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--learning-rate", "10.5"], "--learning-rate"),
        (["--learning-rate=-1e-4"], "--learning-rate"),
        (["--lr-decay", "0"], "--lr-decay"),
        (["--momentum=-0.1"], "--momentum"),
        (["--episodes", "1000001"], "--episodes"),
        (["--steps-per-episode", "0"], "--steps-per-episode"),
        (["--steps-per-episode", "1000000001"], "--steps-per-episode"),
        (["--batch-size", "0"], "--batch-size"),
        (["--depth", "1001"], "--depth"),
        (["--hidden", "100001"], "--hidden"),
        (["--eval-batches", "0"], "--eval-batches"),
        (["--eval-batch-size", "1000001"], "--eval-batch-size"),
        (["--steps-per-execution", "100001"], "--steps-per-execution"),
        (["--seed", str(2**31)], "--seed"),
        # The case: 10^11 scores after every episode would run for minutes.
        (["--eval-batch-size", "1000000", "--eval-batches", "100000"], "--eval-batches"),
    ],
)
def test_train_flags_out_of_range_are_refused_before_any_folder(flags, name, tmp_path, capsys):
    run = tmp_path / "run"
    assert_refused(["argmax", "train", "--run", str(run), *flags], name, capsys)
    assert not run.exists()


@pytest.mark.parametrize(
    "flags, figure",
    [
        # The three absurd sizes: TiB of activations, a 2-billion-parameter network.
        (
            ["--batch-size", "1000000", "--hidden", "100000", "--steps-per-execution", "100000"],
            "TB",
        ),
        (["--hidden", "100000", "--depth", "1000"], "GB"),
        (["--recipe", "improved", "--batch-size", "1000000", "--hidden", "2000"], "GB"),
    ],
)
def test_sizes_this_machine_cannot_hold_are_refused_naming_flags_and_figures(
    flags, figure, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(16 * GB))
    run = tmp_path / "run"
    err = assert_refused(["argmax", "train", "--run", str(run), *flags], "--hidden", capsys)
    assert "--batch-size" in err and "need about" in err and figure in err
    assert "16.0 GB available" in err
    assert not run.exists()


def test_the_seed_recipe_fits_a_small_machine(monkeypatch):
    assert memory_needed(3, 60, batch_size=25, eval_batch_size=500) < 10**7
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(GB))
    require_memory_for(ArgMaxConfig())
    require_memory_for(ArgMaxConfig.for_recipe("improved"))
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(10**6))
    with pytest.raises(ResourceError, match="--batch-size 25"):
        require_memory_for(ArgMaxConfig())


def test_memory_estimate_grows_with_every_size_flag():
    base = dict(batch_size=25, eval_batch_size=500)
    seed = memory_needed(3, 60, **base)
    assert memory_needed(6, 60, **base) > seed
    assert memory_needed(3, 120, **base) > seed
    assert memory_needed(3, 60, "multiply", **base) > seed
    assert memory_needed(3, 60, batch_size=2500, eval_batch_size=500) > seed
    assert memory_needed(3, 60, batch_size=25, eval_batch_size=50_000) > seed
    assert memory_needed(3, 60, optimizer_slots=2, **base) > seed


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--batches", "0"], "--batches"),
        (["--batch-size", "1000001"], "--batch-size"),
        (["--batches", "1000000", "--batch-size", "1000"], "--batches"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_test_flags_out_of_range_are_refused(flags, name, tmp_path, capsys):
    model = tmp_path / "model.keras"
    assert_refused(["argmax", "test", "--model", str(model), *flags], name, capsys)


def test_test_protocol_too_large_for_memory_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "model.keras"
    ArgMaxNet(depth=1, hidden=4).save(path)
    keras.backend.clear_session()
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(100 * 10**6))
    flags = ["--batches", "10", "--batch-size", "1000000"]
    err = assert_refused(["argmax", "test", "--model", str(path), *flags], "--batch-size", capsys)
    assert "--batches 10" in err and "need about" in err and "width 4" in err


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--max-learning-rate", "11"], "--max-learning-rate"),
        (["--min-learning-rate", "0"], "--min-learning-rate"),
        (["--steps", "0"], "--steps"),
        (["--max-depth", "101"], "--max-depth"),
        (["--validation-batches", "100000", "--validation-batch-size", "1000"], "--validation"),
    ],
)
def test_tune_flags_out_of_range_are_refused(flags, name, tmp_path, capsys):
    search = tmp_path / "search"
    assert_refused(["argmax", "tune", "--run", str(search), *flags], name, capsys)
    assert not search.exists()


def test_a_search_whose_widest_candidate_cannot_fit_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(16 * GB))
    search = tmp_path / "search"
    argv = ["argmax", "tune", "--run", str(search), "--budget", "1000000000"]
    err = assert_refused(argv, "--budget 1000000000", capsys)
    assert "need about" in err and "GB" in err
    assert not search.exists()
