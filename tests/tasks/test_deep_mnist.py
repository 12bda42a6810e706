import json

import numpy as np
import pandas as pd
import pytest

from zoo.tasks import deep_mnist
from zoo.tasks.deep_mnist import DeepConfig, batch_indices
from zoo.cli import main
from zoo.deep import FileWeights


@pytest.fixture
def mnist_env(monkeypatch, mnist_dir, tfds_dir):
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)


def test_batches_are_drawn_with_replacement_reproducibly():
    first = batch_indices(0, 5, 16, 60000)
    assert np.array_equal(first, batch_indices(0, 5, 16, 60000))
    assert not np.array_equal(first, batch_indices(0, 6, 16, 60000))
    assert first.min() >= 0 and first.max() < 60000


def test_resume_continues_the_same_sequence(tmp_path, mnist_env):
    straight = DeepConfig(layers=200, chunk_layers=64, steps=6, report_every=1, run=str(tmp_path / "a"))
    deep_mnist.train(straight, verbose=0)
    first_half = DeepConfig(layers=200, chunk_layers=64, steps=3, report_every=1, run=str(tmp_path / "b"))
    deep_mnist.train(first_half, verbose=0)
    deep_mnist.train(DeepConfig(**{**first_half.__dict__, "steps": 6}), verbose=0)
    history_a = pd.read_csv(tmp_path / "a" / "history.csv")
    history_b = pd.read_csv(tmp_path / "b" / "history.csv")
    np.testing.assert_allclose(history_b["loss"], history_a["loss"], rtol=1e-6)
    with FileWeights.open(tmp_path / "a" / "weights.bin") as a, FileWeights.open(tmp_path / "b" / "weights.bin") as b:
        assert a.steps == b.steps == 6
        np.testing.assert_allclose(a._load(0, 200)[0], b._load(0, 200)[0], rtol=1e-6)


def test_in_memory_training_learns_and_eval_reports(tmp_path, mnist_env, capsys):
    run = tmp_path / "mem"
    assert main(["deep", "train", "--layers", "100", "--chunk-layers", "30", "--steps", "150", "--batch", "16",
                 "--layer-lr", "0.05", "--head-lr", "0.05", "--in-memory", "--save-every", "50",
                 "--run", str(run)]) == 0
    history = pd.read_csv(run / "history.csv")
    assert history["loss"].iloc[-3:].mean() < history["loss"].iloc[:3].mean() - 0.2
    assert main(["deep", "eval", "--run", str(run), "--samples", "1000"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.3 and metrics["test_samples"] == 1000 and metrics["steps"] == 150


@pytest.mark.parametrize("flags, name", [
    (["--layers", "0"], "--layers"), (["--width", "-2"], "--width"), (["--chunk-layers", "0"], "--chunk-layers"),
])
def test_bad_flags(flags, name, capsys):
    assert main(["deep", "train", *flags]) == 2
    assert name in capsys.readouterr().err


def test_weights_file_disagreeing_with_the_flags(tmp_path, mnist_env, capsys):
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=20, width=4).close()
    assert main(["deep", "train", "--layers", "30", "--weights", str(path), "--run", str(tmp_path / "r")]) == 2
    assert "--layers" in capsys.readouterr().err
