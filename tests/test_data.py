import doctest

import numpy as np
import pytest

import zoo.batches
import zoo.data
from zoo.data import ResizableBatches, load_mnist
from zoo.errors import UsageError


def test_real_mnist_from_the_original_files(mnist_dir, tfds_dir):
    train_x, train_y = load_mnist(
        "train", as_numpy=True, normalize=False, manual_dir=str(mnist_dir), data_dir=tfds_dir
    )
    test_x, test_y = load_mnist("test", as_numpy=True, manual_dir=str(mnist_dir), data_dir=tfds_dir)
    assert train_x.shape == (60000, 28, 28, 1) and train_x.dtype == np.uint8
    assert test_x.shape == (10000, 28, 28, 1) and test_x.dtype == np.float32
    assert 0.0 <= test_x.min() and test_x.max() == 1.0
    assert sorted(np.unique(train_y)) == list(range(10))
    assert len(train_y) == 60000 and len(test_y) == 10000
    # the standard MNIST test set's first label is 7, in the original file order
    dataset = load_mnist("test", flatten=True, manual_dir=str(mnist_dir), data_dir=tfds_dir)
    image, label = next(iter(dataset))
    assert image.shape == (784,) and float(np.max(image)) <= 1.0


def test_bad_split():
    with pytest.raises(UsageError, match="split"):
        load_mnist("validation")


def epoch_ids(data):
    return np.concatenate([data[i][1] for i in range(len(data))])


def test_resizable_batches_cover_every_example_once():
    data = ResizableBatches(np.arange(10)[:, None], np.arange(10), batch_size=4, seed=1)
    assert len(data) == 3 and [len(data[i][1]) for i in range(3)] == [4, 4, 2]
    first = epoch_ids(data)
    assert sorted(first) == list(range(10))
    data.on_epoch_end()
    data.batch_size = 3
    assert len(data) == 4
    second = epoch_ids(data)
    assert sorted(second) == list(range(10)) and not np.array_equal(second, first)
    with pytest.raises(IndexError):
        data[4]


def test_resizable_batches_order_is_a_function_of_seed_and_epoch():
    def order(seed, epoch, batch_size=3):
        data = ResizableBatches(np.arange(20), np.arange(20), batch_size=batch_size, seed=seed)
        data.epoch = epoch
        return epoch_ids(data)

    # what a run resumed at epoch 5 sees is what an uninterrupted run sees at epoch 5
    walked = ResizableBatches(np.arange(20), np.arange(20), batch_size=3, seed=7)
    for _ in range(5):
        walked.on_epoch_end()
    np.testing.assert_array_equal(epoch_ids(walked), order(7, 5))
    np.testing.assert_array_equal(order(7, 5), order(7, 5, batch_size=6))  # batch size aside
    assert not np.array_equal(order(7, 5), order(7, 6))
    assert not np.array_equal(order(7, 5), order(8, 5))
    unseeded = ResizableBatches(np.arange(20), np.arange(20), batch_size=3)
    unseeded.epoch = 2
    again = epoch_ids(unseeded)
    unseeded.epoch = 2
    np.testing.assert_array_equal(epoch_ids(unseeded), again)


def test_resizable_batches_without_shuffle_keep_the_order():
    data = ResizableBatches(np.arange(7), np.arange(7), batch_size=2, shuffle=False)
    data.on_epoch_end()
    np.testing.assert_array_equal(epoch_ids(data), np.arange(7))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"x": np.zeros((3, 1)), "y": np.zeros(3), "batch_size": 0}, "batch_size"),
        ({"x": np.zeros((3, 1)), "y": np.zeros(4), "batch_size": 1}, "same length"),
        ({"x": np.zeros((0, 1)), "y": np.zeros(0), "batch_size": 1}, "at least one"),
        ({"x": np.zeros((3, 1)), "y": np.zeros(3), "batch_size": 1, "seed": -1}, "seed"),
        (
            {"x": np.zeros((3, 1)), "y": np.zeros(3), "batch_size": 1, "use_multiprocessing": True},
            "use_multiprocessing",
        ),
    ],
)
def test_resizable_batches_bad_input(kwargs, name):
    with pytest.raises(UsageError, match=name):
        ResizableBatches(**kwargs)


def test_docstring_examples_run():
    for module, examples in ((zoo.data, 5), (zoo.batches, 5)):
        result = doctest.testmod(module)
        assert result.attempted >= examples and result.failed == 0, module.__name__


def test_import_zoo_data_imports_no_keras():
    import subprocess
    import sys

    code = "import sys, zoo.data; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.stdout.split() == ["False", "False"], completed.stderr
