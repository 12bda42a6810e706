"""Memory-informed decoder and set-min random loss on MNIST (seed `001`, Mathematica notes).

Inputs are `dl`-dimensional PCA codes of MNIST images (fitted on the training images only,
saved in the run folder as `pca.npz`); targets are the images as 784-vectors in [0, 1].

- `MemoryInformedAE`: `F = softmax(Approximator(512 -> mn)(code))`;
  `Output1 = F . sigmoid(M)` (the memory, `MemoryDotLayer`);
  `Output2 = F . sigmoid(Approximator(512 -> (mn, 784))(code))` (the memory-informed
  approximator); both trained on the image, plus an optional weighted `1 - max(F)` term.
- `SetMinAE`: K decoder subnets from the same code, trained with `SetMinRandomLoss`; sigma
  follows the notes' schedule (1 : 2 : 1 of the run at 10^0, 10^1, 10^2) by default.

The stages, one module each: `config` -> `data` -> `models` -> `measures` -> `training` ->
`plots` -> `comparison` -> `cli`; `hypermodel` holds `MemoryAEHyperModel` for keras-tuner.
Names are imported lazily, so `zoo.tasks.memory_ae.cli` (and `zoo --help`) stays free of
TensorFlow.
"""

from zoo._lazy import lazy_exports

_EXPORTS = {
    "MemoryAEConfig": "config",
    "CompareConfig": "config",
    "VARIANTS": "config",
    "PIXELS": "config",
    "epoch_batches": "data",
    "load_images": "data",
    "MemoryInformedAE": "models",
    "SetMinAE": "models",
    "MemoryMeasures": "measures",
    "SetMinMeasures": "measures",
    "SigmaSchedule": "measures",
    "mean_pairwise_distance": "measures",
    "selection_perplexity": "measures",
    "slots_used": "measures",
    "winner_histogram": "measures",
    "train": "training",
    "build_model": "training",
    "draw_pictures": "plots",
    "compare": "comparison",
    "MemoryAEHyperModel": "hypermodel",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
