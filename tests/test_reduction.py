import numpy as np
import pytest

from zoo.errors import UsageError
from zoo.reduction import PCA


def reconstruction_mse(x, codes):
    """Best linear reconstruction of x from codes (least squares), its MSE."""
    design = np.concatenate([codes, np.ones((len(codes), 1))], axis=1)
    weights, *_ = np.linalg.lstsq(design, x, rcond=None)
    return float(np.mean((design @ weights - x) ** 2))


def test_pca_codes_reconstruct_mnist_better_than_a_random_projection(mnist_test_arrays):
    images = mnist_test_arrays[0].reshape(-1, 784)[:3000]
    pca = PCA(6).fit(images)
    codes = pca.transform(images)
    np.testing.assert_allclose(codes.std(axis=0), 1.0, rtol=1e-3)
    pca_error = float(np.mean((pca.inverse_transform(codes) - images) ** 2))
    random_codes = images @ np.random.default_rng(0).normal(size=(784, 6))
    assert pca_error < 0.8 * reconstruction_mse(images, random_codes)
    assert pca_error == pytest.approx(reconstruction_mse(images, codes), rel=1e-3)


def test_save_load(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 8))
    pca = PCA(3).fit(x)
    pca.save(tmp_path / "pca.npz")
    np.testing.assert_allclose(PCA.load(tmp_path / "pca.npz").transform(x), pca.transform(x))


def test_bad_dims():
    with pytest.raises(UsageError, match="dims"):
        PCA(0)
    with pytest.raises(UsageError, match="dims"):
        PCA(10).fit(np.zeros((20, 4)))


def test_unwhitened_codes_keep_the_variances(tmp_path):
    x = np.random.default_rng(2).normal(size=(400, 3)) * np.array([3.0, 1.0, 0.1])
    pca = PCA(2, whiten=False).fit(x)
    np.testing.assert_allclose(pca.transform(x).std(axis=0, ddof=1), [3.0, 1.0], rtol=0.1)
    pca.save(tmp_path / "pca.npz")
    restored = PCA.load(tmp_path / "pca.npz")
    assert restored.whiten is False
    np.testing.assert_array_equal(restored.transform(x), pca.transform(x))


def test_use_before_fit_names_fit():
    with pytest.raises(UsageError, match="fit"):
        PCA(2).transform(np.zeros((3, 4)))
