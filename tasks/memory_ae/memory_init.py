"""The notes' open ideas for `MemoryInformedAE`: a memory array set from training images, and
pretraining the memory layer and the memory-informed subnets before connecting them.

- `memory_from_samples` / `memory_from_kmeans` pick `slots` pictures (random training images,
  or k-means centroids of the training images); `set_memory` writes them into the model's
  memory array through the inverse of its sigmoid, so `sigmoid(M)` starts as those pictures.
- `PRETRAIN_PHASES` and `fit_memory_ae` train in three phases: the memory path alone
  (selector and memory array on the memory output), then the memory-informed candidates alone
  on the memory-informed output with the selection frozen (each slot's candidate learns the
  examples routed to that slot), then everything together.
"""

from typing import Callable, Optional, Sequence

import keras
import numpy as np

from zoo.errors import UsageError

INITS = ("glorot", "samples", "kmeans")
# (phase, share of the run): the memory path, then the informed candidates, then both.
PRETRAIN_PHASES = (("memory", 1), ("informed", 1), ("joint", 2))
JOINT_ONLY = (("joint", 1),)
PIXEL_CLIP = 0.01


def memory_from_samples(images: np.ndarray, slots: int, seed: int) -> np.ndarray:
    """`slots` distinct training images drawn with `seed`, shape `(slots, pixels)`.

    Example:

    >>> import numpy as np
    >>> images = np.arange(12, dtype="float32").reshape(6, 2)
    >>> picked = memory_from_samples(images, 3, seed=0)
    >>> picked.shape, all(any((row == image).all() for image in images) for row in picked)
    ((3, 2), True)
    """
    if slots > len(images):
        raise UsageError(f"`slots`={slots} exceeds the {len(images)} training images.")
    rows = np.random.default_rng(seed).choice(len(images), size=slots, replace=False)
    return np.asarray(images[rows], np.float32)


def memory_from_kmeans(
    images: np.ndarray, slots: int, seed: int, iterations: int = 20
) -> np.ndarray:
    """k-means centroids of the training images (k-means++ start, Lloyd iterations),
    shape `(slots, pixels)`; an emptied cluster is re-seeded at the worst-fitted image.

    Example:

    >>> import numpy as np
    >>> points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]], "float32")
    >>> sorted(memory_from_kmeans(points, 2, seed=0).astype(float).round(2).tolist())
    [[0.05, 0.0], [5.05, 5.0]]
    """
    if slots > len(images):
        raise UsageError(f"`slots`={slots} exceeds the {len(images)} training images.")
    rng = np.random.default_rng(seed)
    data = np.asarray(images, np.float32)
    squared_norms = np.einsum("ij,ij->i", data, data)
    centroids = [data[rng.integers(len(data))]]
    nearest = _squared_distances(data, squared_norms, np.stack(centroids)).min(axis=1)
    for _ in range(1, slots):  # k-means++: the next centre drawn by squared distance
        total = nearest.sum()
        pick = rng.choice(len(data), p=nearest / total) if total > 0 else rng.integers(len(data))
        centroids.append(data[pick])
        distances = _squared_distances(data, squared_norms, data[pick][None])[:, 0]
        nearest = np.minimum(nearest, distances)
    centroids = np.stack(centroids)
    for _ in range(iterations):
        distances = _squared_distances(data, squared_norms, centroids)
        assignment = distances.argmin(axis=1)
        moved = centroids.copy()
        for cluster in range(slots):
            members = assignment == cluster
            if members.any():
                moved[cluster] = data[members].mean(axis=0)
            else:
                moved[cluster] = data[np.argmax(distances.min(axis=1))]
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids


def _squared_distances(data, squared_norms, centres) -> np.ndarray:
    cross = data @ centres.T
    return np.maximum(squared_norms[:, None] - 2 * cross + np.sum(centres**2, axis=1), 0.0)


def initial_memory(init: str, images: np.ndarray, slots: int, seed: int) -> Optional[np.ndarray]:
    """The pictures `init` names (`"samples"`, `"kmeans"`), or None for `"glorot"` (the
    layer's own random initialiser)."""
    if init == "glorot":
        return None
    if init == "samples":
        return memory_from_samples(images, slots, seed)
    if init == "kmeans":
        return memory_from_kmeans(images, slots, seed)
    raise UsageError(f"memory init must be one of {', '.join(INITS)}, got {init!r}.")


def set_memory(model: keras.Model, pictures: np.ndarray) -> None:
    """Sets a built `MemoryInformedAE`'s memory array so that `sigmoid(M)` equals `pictures`
    (clipped to `[0.01, 0.99]`, which keeps the sigmoid out of saturation)."""
    clipped = np.clip(np.asarray(pictures, np.float64), PIXEL_CLIP, 1.0 - PIXEL_CLIP)
    variable = model.memory.memory
    if tuple(variable.shape) != clipped.shape:
        raise UsageError(
            f"memory pictures of shape {clipped.shape} do not fit the memory array "
            f"{tuple(variable.shape)}."
        )
    variable.assign(np.log(clipped / (1.0 - clipped)).astype(variable.dtype))


def phase_epochs(phases: Sequence, epochs: int) -> list:
    """`[(phase, first epoch, end epoch), ...]`: the run's epochs cut by the phases' shares;
    each phase gets at least one epoch when `epochs` allows.

    Example:

    >>> phase_epochs(PRETRAIN_PHASES, 10)
    [('memory', 0, 2), ('informed', 2, 5), ('joint', 5, 10)]
    """
    total = sum(share for _, share in phases)
    bounds, cumulative = [], 0
    for index, (name, share) in enumerate(phases):
        cumulative += share
        first = bounds[-1][2] if bounds else 0
        end = round(epochs * cumulative / total)
        if epochs >= len(phases):  # at least one epoch here and for every later phase
            end = min(max(end, first + 1), epochs - (len(phases) - index - 1))
        bounds.append((name, first, end))
    return bounds


def configure_phase(model: keras.Model, phase: str) -> list:
    """Sets which parts of a `MemoryInformedAE` train in `phase`; returns the two outputs'
    loss weights."""
    memory_path = phase in ("memory", "joint")
    model.selector.trainable = memory_path
    model.memory.trainable = memory_path
    model.candidates.trainable = phase in ("informed", "joint")
    return {"memory": [1.0, 0.0], "informed": [0.0, 1.0], "joint": [1.0, 1.0]}[phase]


def fit_memory_ae(
    model: keras.Model,
    batches,
    epochs: int,
    make_optimizer: Callable[[], keras.optimizers.Optimizer],
    phases: Sequence = JOINT_ONLY,
    callbacks: Sequence = (),
    verbose="auto",
) -> list:
    """Trains a built `MemoryInformedAE` through `phases` (recompiled with a fresh optimizer
    per phase); returns one history row per epoch with its phase.

    Args:
        model: the built model (its memory possibly set by `set_memory`).
        batches: `(codes, (images, images))` batches (`data.epoch_batches`, whose `follow`
            callback goes in `callbacks`).
        epochs: the run's epochs, shared out by `phase_epochs`.
        make_optimizer: a fresh optimizer per phase.
        phases: `PRETRAIN_PHASES`, or `JOINT_ONLY` (the current training).
        callbacks: Keras callbacks for every phase.
        verbose: Keras's `fit` verbosity.
    """
    rows = []
    for phase, first, end in phase_epochs(phases, epochs):
        if end <= first:
            continue
        loss_weights = configure_phase(model, phase)
        model.compile(
            make_optimizer(), loss=["mse", "mse"], loss_weights=loss_weights, jit_compile=True
        )
        history = model.fit(
            batches,
            initial_epoch=first,
            epochs=end,
            shuffle=False,
            callbacks=list(callbacks),
            verbose=verbose,
        )
        for offset, epoch in enumerate(history.epoch):
            row = {"phase": phase, "epoch": epoch + 1}
            row.update({key: values[offset] for key, values in history.history.items()})
            rows.append(row)
    configure_phase(model, "joint")
    return rows
