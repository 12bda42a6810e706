import numpy as np
import pytest

from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights, TornFileError


def test_header_round_trip_and_deterministic_init(tmp_path):
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=1000, width=3, activation="tanh", seed=5, chunk_layers=300).close()
    with FileWeights.open(path) as weights:
        assert (weights.layers, weights.width, weights.activation, weights.steps) == (1000, 3, "tanh", 0)
        assert weights.dtype == np.float32
        W, b = weights._load(0, 1000)
    assert np.abs(W).max() <= 0.001 and np.abs(W).max() > 0.0009 and not b.any()
    # filled chunk by chunk, the same as in one go
    FileWeights.create(tmp_path / "v.bin", layers=1000, width=3, activation="tanh", seed=5, chunk_layers=1000).close()
    with FileWeights.open(tmp_path / "v.bin") as other:
        np.testing.assert_array_equal(other._load(0, 1000)[0], W)


def test_a_step_interrupted_mid_write_back_is_detected(tmp_path):
    path = tmp_path / "w.bin"
    weights = FileWeights.create(path, layers=10, width=2)
    network = DeepNetwork(weights, chunk_layers=4)
    network.train_step(np.random.rand(2, 784), np.array([1, 2]))
    assert weights.steps == 1
    weights.begin_step()  # a step starts writing back ...
    weights._store(8, *weights._load(8, 10))
    weights.close()  # ... and the process dies here
    with pytest.raises(TornFileError, match="interrupted while writing back step 2"):
        FileWeights.open(path)


def test_bad_files(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="bad magic"):
        FileWeights.open(tmp_path / "junk.bin")
    with pytest.raises(ValueError, match="does not exist"):
        FileWeights.open(tmp_path / "missing.bin")
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=10, width=2).close()
    with open(path, "ab") as file:
        file.write(b"\0" * 8)
    with pytest.raises(ValueError, match="need"):
        FileWeights.open(path)


def test_in_memory_save_and_reload_through_a_file(tmp_path):
    weights = InMemoryWeights.create(50, 4, "relu", seed=3, piece_layers=20)
    weights.steps = 7
    weights.save(tmp_path / "w.bin")
    with FileWeights.open(tmp_path / "w.bin") as file_weights:
        again = InMemoryWeights.from_file(file_weights, piece_layers=16)
    np.testing.assert_array_equal(again.W.numpy(), weights.W.numpy())
    assert again.steps == 7 and again.activation == "relu"


def test_in_memory_pieces_read_and_write_any_range():
    W, b = np.arange(10 * 4, dtype=np.float64).reshape(10, 2, 2), np.arange(20, dtype=np.float64).reshape(10, 2)
    weights = InMemoryWeights(W, b, piece_layers=4)
    got_W, got_b = weights.read(3, 9)
    np.testing.assert_array_equal(got_W, W[3:9])
    np.testing.assert_array_equal(got_b, b[3:9])
    weights.write(3, -got_W, -got_b)
    expected = W.copy()
    expected[3:9] *= -1
    np.testing.assert_array_equal(weights.W.numpy(), expected)
