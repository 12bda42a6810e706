"""The weights stores: the two-copy file, its commit record, and the in-memory core."""

import os

import numpy as np
import pytest

from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights, pack_record, record_capacity
from zoo.deep.storage import SLOT_OFFSETS
from zoo.errors import CorruptFileError


def network_on(weights):
    return DeepNetwork(weights, chunk_layers=4, inputs=6, classes=3, kernels="xla")


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((5, 6)), rng.integers(0, 3, 5)


def new_file(path, layers=10, width=2, **kwargs):
    return FileWeights.create(
        path, layers, width, extra_capacity=record_capacity(6, width, 3, np.float32), **kwargs
    )


def test_header_round_trip_and_deterministic_init(tmp_path):
    path = tmp_path / "w.bin"
    FileWeights.create(
        path, layers=1000, width=3, activation="tanh", seed=5, chunk_layers=300
    ).close()
    with FileWeights.open(path) as weights:
        assert (weights.layers, weights.width, weights.activation, weights.steps) == (
            1000,
            3,
            "tanh",
            0,
        )
        assert weights.dtype == np.float32
        W, b = weights.load(0, 1000)
    assert np.abs(W).max() <= 0.001 and np.abs(W).max() > 0.0009 and not b.any()
    # filled chunk by chunk, the same as in one go; no temporary left behind
    FileWeights.create(
        tmp_path / "v.bin", layers=1000, width=3, activation="tanh", seed=5, chunk_layers=1000
    ).close()
    with FileWeights.open(tmp_path / "v.bin") as other:
        np.testing.assert_array_equal(other.load(0, 1000)[0], W)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.bin", "w.bin"]


def test_steps_commit_core_stem_and_head_together(tmp_path):
    path = tmp_path / "w.bin"
    network = network_on(new_file(path))
    for seed in range(3):
        network.train_step(*batch(seed))
    network.weights.close()
    with FileWeights.open(path) as weights:
        again = DeepNetwork(weights, chunk_layers=4, kernels="xla")
        assert weights.steps == 3
        for name, variable in network.params.items():
            np.testing.assert_array_equal(again.params[name].numpy(), variable.numpy())
        assert again.alpha == network.alpha and (again.inputs, again.classes) == (6, 3)


def test_a_step_interrupted_mid_write_back_leaves_the_last_commit(tmp_path):
    path = tmp_path / "w.bin"
    network = network_on(new_file(path))
    network.train_step(*batch(0))
    weights = network.weights
    before_W, before_b = weights.load(0, 10)
    head = {name: variable.numpy() for name, variable in network.params.items()}
    weights.begin_step()  # a step starts writing back ...
    weights.write(6, -np.ones((4, 2, 2), np.float32), np.ones((4, 2), np.float32))
    weights.close()  # ... and the process dies here, before its commit
    with FileWeights.open(path) as again:
        assert again.steps == 1
        np.testing.assert_array_equal(again.load(0, 10)[0], before_W)
        np.testing.assert_array_equal(again.load(0, 10)[1], before_b)
        restored = DeepNetwork(again, chunk_layers=4, kernels="xla")
        for name, value in head.items():
            np.testing.assert_array_equal(restored.params[name].numpy(), value)


def test_the_committed_copy_is_never_written_in_place(tmp_path):
    weights = new_file(tmp_path / "w.bin")
    with pytest.raises(RuntimeError, match="never written in place"):
        weights.store(0, np.zeros((1, 2, 2)), np.zeros((1, 2)), copy=weights.current)
    weights.close()


def test_a_torn_commit_slot_falls_back_to_the_previous_commit(tmp_path):
    path = tmp_path / "w.bin"
    network = network_on(new_file(path))
    network.train_step(*batch(0))
    after_one = network.weights.load(0, 10)[0]
    network.train_step(*batch(1))
    newest = network.weights._slot
    network.weights.close()
    with open(path, "r+b") as file:  # tear the newest slot (a crash inside its write)
        file.seek(SLOT_OFFSETS[newest] + 20)
        file.write(b"\xff\xff")
    with FileWeights.open(path) as weights:
        assert weights.steps == 1
        np.testing.assert_array_equal(weights.load(0, 10)[0], after_one)
    with open(path, "r+b") as file:  # both slots torn: nothing to trust
        file.seek(SLOT_OFFSETS[1 - newest] + 20)
        file.write(b"\xff\xff")
    with pytest.raises(CorruptFileError, match="no valid commit record"):
        FileWeights.open(path)


def test_bad_files(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"x" * 5000)
    with pytest.raises(CorruptFileError, match="junk.bin: not a zoo deep-core weights file"):
        FileWeights.open(tmp_path / "junk.bin")
    with pytest.raises(CorruptFileError, match="missing.bin: missing"):
        FileWeights.open(tmp_path / "missing.bin")
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=10, width=2).close()
    with open(path, "ab") as file:
        file.write(b"\0" * 8)
    with pytest.raises(CorruptFileError, match="need"):
        FileWeights.open(path)
    os.truncate(path, 100)
    with pytest.raises(CorruptFileError, match="too short"):
        FileWeights.open(path)


def test_in_memory_save_goes_to_the_spare_copy_and_reloads(tmp_path):
    file = FileWeights.create(tmp_path / "w.bin", 50, 4, "relu", extra_capacity=64)
    weights = InMemoryWeights.create(50, 4, "relu", seed=3)
    weights.steps = 7
    current, committed_W = file.current, file.load(0, 50)[0]
    weights.save(file, b"state", piece_layers=16)
    assert file.current != current and file.steps == 7
    np.testing.assert_array_equal(file.load(0, 50, copy=current)[0], committed_W)  # untouched
    file.close()
    with FileWeights.open(tmp_path / "w.bin") as reopened:
        again = InMemoryWeights.from_file(reopened, piece_layers=16)
    np.testing.assert_array_equal(again.W.numpy(), weights.W.numpy())
    assert again.steps == 7 and again.activation == "relu" and again.record == b"state"


def test_record_too_large_for_the_file_is_refused(tmp_path):
    file = FileWeights.create(tmp_path / "w.bin", 5, 2, extra_capacity=8)
    with pytest.raises(ValueError, match="exceeds"):
        file.commit(
            1,
            pack_record(
                {
                    "W_in": np.zeros((6, 2)),
                    "b_in": np.zeros(2),
                    "W_out": np.zeros((2, 3)),
                    "b_out": np.zeros(3),
                },
                0.5,
            ),
        )
    file.close()


def test_in_memory_read_and_write_any_range():
    W, b = (
        np.arange(10 * 4, dtype=np.float64).reshape(10, 2, 2),
        np.arange(20, dtype=np.float64).reshape(10, 2),
    )
    weights = InMemoryWeights(W.copy(), b.copy())
    got_W, got_b = weights.read(3, 9)
    np.testing.assert_array_equal(got_W, W[3:9])
    np.testing.assert_array_equal(got_b, b[3:9])
    weights.write(3, -got_W.numpy(), -got_b.numpy())
    expected = W.copy()
    expected[3:9] *= -1
    np.testing.assert_array_equal(weights.W.numpy(), expected)


def test_network_needs_its_sizes_or_a_head():
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="`inputs` and `classes`"):
        DeepNetwork(InMemoryWeights.create(5, 2), chunk_layers=2, kernels="xla")


# --- checksums ------------------------------------------------------------------------------


def test_native_and_numpy_checksums_agree():
    from zoo.deep.checksums import block_checksum, numpy_checksum

    rng = np.random.default_rng(0)
    for layers, width, dtype in [(1, 1, np.float32), (7, 3, np.float64), (333, 4, np.float32)]:
        W = rng.standard_normal((layers, width, width)).astype(dtype)
        b = rng.standard_normal((layers, width)).astype(dtype)
        value = block_checksum(W, b)
        assert value == numpy_checksum(W, b)
        W[layers // 2, 0, 0] = np.nextafter(W[layers // 2, 0, 0], np.inf, dtype=dtype)
        assert block_checksum(W, b) != value  # one ulp of one weight changes it


def flip_weight(path, layer, copy=None):
    """Changes one weight of `layer` in the committed copy (or `copy`) on disk."""
    with FileWeights.open(path, "r") as weights:
        offset = weights.layout.W_offset(weights.current if copy is None else copy, layer)
    with open(path, "r+b") as file:
        file.seek(offset + 4)
        value = np.frombuffer(file.read(4), np.float32)[0]
        file.seek(offset + 4)
        file.write(np.float32(-3592.0 if value != -3592.0 else 1.0).tobytes())


def test_a_flipped_weight_is_a_one_line_corrupt_file_error_naming_its_block(tmp_path):
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=50, width=4, block_layers=10, extra_capacity=8).close()
    flip_weight(path, 23)
    with FileWeights.open(path) as weights:
        np.testing.assert_array_equal(weights.load(0, 20)[0].shape, (20, 4, 4))  # blocks 0, 1
        with pytest.raises(CorruptFileError) as error:
            weights.load(20, 30)
    message = str(error.value)
    assert "\n" not in message and "w.bin" in message
    assert "layers 20-29 (checksum block 2 of 5)" in message
    with FileWeights.open(path) as weights:  # a read cutting the block checks it whole
        with pytest.raises(CorruptFileError, match="layers 20-29"):
            weights.load(25, 27)
    with FileWeights.open(path) as weights:  # the in-memory copy is checked as it is loaded
        with pytest.raises(CorruptFileError, match="checksum block 2 of 5"):
            InMemoryWeights.from_file(weights, piece_layers=16)


def test_training_and_evaluation_refuse_a_corrupt_committed_block(tmp_path):
    path = tmp_path / "w.bin"
    network = network_on(new_file(path))
    network.train_step(*batch(0))
    network.weights.close()
    flip_weight(path, 7)
    with FileWeights.open(path) as weights:
        again = DeepNetwork(weights, chunk_layers=4, kernels="xla")
        with pytest.raises(CorruptFileError, match="fail their checksum"):
            again.train_step(*batch(1))
        assert weights.steps == 1  # nothing was committed
    with FileWeights.open(path, "r") as weights:
        with pytest.raises(CorruptFileError, match="fail their checksum"):
            DeepNetwork(weights, chunk_layers=4, kernels="xla").logits(batch(0)[0])


def test_the_spare_copy_is_not_checked_and_blocks_written_in_parts_are(tmp_path):
    path = tmp_path / "w.bin"
    weights = FileWeights.create(path, layers=30, width=2, block_layers=8, extra_capacity=8)
    W, b = weights.load(0, 30)
    flip_weight(path, 3, copy=weights.spare)  # junk in the spare copy harms nothing
    for start, stop in [(0, 5), (5, 13), (13, 30)]:  # chunks that cut the blocks
        weights.store(start, W[start:stop] * 2, b[start:stop], weights.spare)
    weights.commit(1)
    weights.close()
    with FileWeights.open(path) as again:
        np.testing.assert_array_equal(again.load(0, 30)[0], W * 2)


def test_a_version_2_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "w.bin"
    FileWeights.create(path, layers=10, width=2).close()
    with open(path, "r+b") as file:
        file.seek(8)
        file.write((2).to_bytes(4, "little"))
    with pytest.raises(CorruptFileError) as error:
        FileWeights.open(path)
    message = str(error.value)
    assert "\n" not in message and "version 2 has no block checksums" in message


def test_checking_the_blocks_costs_little_beside_a_step(tmp_path):
    """Each committed block is checked once per commit: a streamed step's backward re-read of a
    block its forward checked is not checked again."""
    path = tmp_path / "w.bin"
    network = network_on(new_file(path, layers=40))
    calls = []
    import zoo.deep.weights_file as weights_file

    original = weights_file.block_checksum
    weights_file.block_checksum = lambda W, b: calls.append(len(W)) or original(W, b)
    try:
        network.train_step(*batch(0))
    finally:
        weights_file.block_checksum = original
    # 40 layers in one block: checked once when read, summed once when written
    assert calls == [40, 40]
