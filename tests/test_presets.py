"""Presets: shipped weights, checked by sha256, loaded by name, listed by `zoo presets`."""

import shutil

import numpy as np
import pytest

import zoo.cli
from zoo.errors import CorruptFileError, UsageError
from zoo.presets import PRESETS, from_preset, preset_path, sha256_of


def test_every_preset_file_matches_its_recorded_sha256():
    for name, entry in PRESETS.items():
        assert sha256_of(preset_path(name)) == entry.sha256


def test_argmax_seed_preset_reproduces_its_error_rate():
    model = from_preset("argmax-seed")
    assert type(model).__name__ == "ArgMaxNet" and model.count_params() == 3821
    # the seed's protocol on fresh scores: softmax of normal logits, label = argmax
    logits = np.random.default_rng(123).normal(size=(5000, 10)).astype("float32")
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = scores.argmax(axis=1)
    predictions = np.asarray(model.predict(scores, batch_size=5000, verbose=0)).reshape(-1)
    err = float(np.mean(np.round(predictions) != labels))
    assert 0.01 < err < 0.035, err  # the preset measured 0.020640 on 50,000 scores


def test_a_damaged_preset_is_one_line_and_never_loaded(tmp_path):
    entry = PRESETS["argmax-seed"]
    shutil.copy(preset_path("argmax-seed"), tmp_path / entry.file)
    with open(tmp_path / entry.file, "r+b") as file:
        file.seek(2000)
        byte = file.read(1)
        file.seek(2000)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(CorruptFileError, match="is not preset 'argmax-seed'") as raised:
        from_preset("argmax-seed", directory=tmp_path)
    assert "\n" not in str(raised.value)
    (tmp_path / entry.file).unlink()
    with pytest.raises(CorruptFileError, match="missing from this installation"):
        from_preset("argmax-seed", directory=tmp_path)


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(
        UsageError,
        match="`--preset` must be one of argmax-improved, argmax-seed, mnist-cnn-ibs-equivalent, "
        "mnist-cnn-lrd, got 'nope'",
    ):
        from_preset("nope")


def test_zoo_presets_lists_how_each_was_made(capsys):
    assert zoo.cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, entry in PRESETS.items():
        assert out.count(name) >= 1 and entry.command in out and entry.sha256 in out


def test_zoo_argmax_test_runs_the_seed_protocol_on_a_preset(capsys):
    from zoo.cli import main

    assert main(["argmax", "test", "--preset", "argmax-seed", "--batches", "4"]) == 0
    out = capsys.readouterr().out
    assert "Err" in out


@pytest.mark.parametrize("name", ["mnist-cnn-lrd", "mnist-cnn-ibs-equivalent"])
def test_the_mnist_cnn_presets_classify_the_test_images(name, mnist_test_arrays):
    images, labels = mnist_test_arrays
    model = from_preset(name)
    x = images[:2000].astype("float32")  # pixels in [0, 1], as the CNN was trained
    x = x.reshape((-1, 28, 28, 1))
    predictions = np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(axis=1)
    accuracy = float(np.mean(predictions == labels[:2000]))
    assert accuracy > 0.97, accuracy  # each measured about 0.989 on all 10,000
