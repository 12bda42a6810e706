"""Linear dimension reduction fitted on training data (PCA), saved and reloaded as `.npz`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.errors import UsageError
from zoo.validation import check_positive_int


class PCA:
    """Principal component analysis: `code = ((x - mean) @ components.T) / scale`.

    With `whiten=True` each code dimension has unit variance on the training
    set (a good input scale for a network).

    Args:
        dims: int > 0, the code size.
        whiten: divide each component by its standard deviation. Defaults to True.

    Example:

    >>> import numpy as np
    >>> from zoo.reduction import PCA
    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> pca = PCA(2).fit(x)
    >>> codes = pca.transform(x)
    >>> codes.shape, codes.std(axis=0, ddof=1).round(3).tolist()
    ((100, 2), [1.0, 1.0])
    >>> pca.inverse_transform(codes).shape
    (100, 5)
    """

    def __init__(self, dims: int, whiten: bool = True) -> None:
        self.dims = check_positive_int("dims", dims)
        self.whiten = whiten
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> PCA:
        """Fits the components on `x`, shape `(examples, ...)`; returns `self`."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if self.dims > x.shape[1]:
            raise UsageError(f"`dims`={self.dims} exceeds the data width {x.shape[1]}.")
        self.mean = x.mean(axis=0)
        covariance = np.cov(x - self.mean, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][: self.dims]
        self.components = eigenvectors[:, order].T
        if self.whiten:
            self.scale = np.sqrt(np.maximum(eigenvalues[order], 1e-12))
        else:
            self.scale = np.ones(self.dims)
        return self

    def _check_fitted(self) -> None:
        if self.components is None:
            raise UsageError("This PCA is not fitted yet: call `fit(x)` or `PCA.load(path)`.")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The float32 codes of `x`, shape `(examples, dims)`."""
        self._check_fitted()
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return (((x - self.mean) @ self.components.T) / self.scale).astype(np.float32)

    def inverse_transform(self, codes: np.ndarray) -> np.ndarray:
        """The float32 reconstruction of `codes`, shape `(examples, features)`."""
        self._check_fitted()
        codes = np.asarray(codes, np.float64)
        return ((codes * self.scale) @ self.components + self.mean).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the fitted PCA to an `.npz` file."""
        self._check_fitted()
        np.savez(
            path, mean=self.mean, components=self.components, scale=self.scale, whiten=self.whiten
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCA:
        """A PCA from a file written by `save`."""
        with np.load(Path(path)) as data:
            pca = cls(int(data["components"].shape[0]), bool(data["whiten"]))
            pca.mean, pca.components, pca.scale = data["mean"], data["components"], data["scale"]
        return pca
