"""Linear dimension reduction fitted on training data (PCA), saved and reloaded as `.npz`."""

from pathlib import Path

import numpy as np
from zoo.validation import check_positive_int


class PCA:
    """Principal component analysis: `code = ((x - mean) @ components.T) / scale`.

    With `whiten=True` each code dimension has unit variance on the training
    set (a good input scale for a network).

    Args:
        dims: int > 0, the code size.
        whiten: divide each component by its standard deviation. Defaults to True.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> pca = PCA(2).fit(x)
    >>> pca.transform(x).shape
    (100, 2)
    """

    def __init__(self, dims, whiten=True):
        self.dims = check_positive_int("dims", dims)
        self.whiten = whiten
        self.mean = self.components = self.scale = None

    def fit(self, x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if self.dims > x.shape[1]:
            raise ValueError(f"`dims`={self.dims} exceeds the data width {x.shape[1]}.")
        self.mean = x.mean(axis=0)
        covariance = np.cov(x - self.mean, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][: self.dims]
        self.components = eigenvectors[:, order].T
        self.scale = np.sqrt(np.maximum(eigenvalues[order], 1e-12)) if self.whiten else np.ones(self.dims)
        return self

    def transform(self, x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return (((x - self.mean) @ self.components.T) / self.scale).astype(np.float32)

    def inverse_transform(self, codes):
        return ((np.asarray(codes, np.float64) * self.scale) @ self.components + self.mean).astype(np.float32)

    def save(self, path):
        np.savez(path, mean=self.mean, components=self.components, scale=self.scale, whiten=self.whiten)

    @classmethod
    def load(cls, path):
        data = np.load(Path(path))
        pca = cls(int(data["components"].shape[0]), bool(data["whiten"]))
        pca.mean, pca.components, pca.scale = data["mean"], data["components"], data["scale"]
        return pca
