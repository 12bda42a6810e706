import numpy as np
import pytest

from zoo.data import ResizableBatches, load_mnist


def test_real_mnist_from_the_original_files(mnist_dir, tfds_dir):
    train_x, train_y = load_mnist("train", as_numpy=True, normalize=False, manual_dir=str(mnist_dir), data_dir=tfds_dir)
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
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


def test_resizable_batches_cover_every_example_once():
    data = ResizableBatches(np.arange(10)[:, None], np.arange(10), batch_size=4, seed=1)
    assert len(data) == 3
    seen = np.concatenate([data[i][1] for i in range(len(data))])
    assert sorted(seen) == list(range(10))
    first_order = seen.copy()
    data.on_epoch_end()
    data.batch_size = 3
    assert len(data) == 4
    seen = np.concatenate([data[i][1] for i in range(len(data))])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, first_order)


def test_resizable_batches_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        ResizableBatches(np.zeros((3, 1)), np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        ResizableBatches(np.zeros((3, 1)), np.zeros(4), batch_size=1)
