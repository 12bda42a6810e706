"""Pictures of a run: a grid per digit class (target and every output) and the test curves."""

import numpy as np
from matplotlib.ticker import MaxNLocator

from zoo.runs import RunFolder, matplotlib_agg

from .config import MemoryAEConfig

CURVE_NAMES = {
    "test_mse_memory": "memory output",
    "test_mse_informed": "memory-informed output",
    "test_mse_best_subnet": "best subnet",
}


def draw_pictures(model, run: RunFolder, config: MemoryAEConfig, test, per_class: int = 6):
    """Writes `grid.png` (per digit: rows target / memory / memory-informed, or target /
    each subnet) and `curves.png` (test MSE per epoch). The titles name the variant."""
    plt = matplotlib_agg()
    picks = np.concatenate(
        [np.flatnonzero(test.labels == digit)[:per_class] for digit in range(10)]
    )
    outputs = model.predict(test.codes[picks], verbose=0)
    if config.model == "memory":
        rows = [test.images[picks], outputs[0], outputs[1]]
        names = ["target", "memory", "memory-informed"]
    else:
        rows = [test.images[picks]] + [outputs[:, k] for k in range(outputs.shape[1])]
        names = ["target"] + [f"subnet {k}" for k in range(outputs.shape[1])]
    shown = len(picks) // 10
    mosaic = _mosaic(rows, shown)
    figure, axis = plt.subplots(figsize=(11, 0.55 * len(rows) * 2 + 1.0))
    axis.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    tile = 28 + 2
    block = len(rows) * tile + 6
    axis.set_yticks(
        [half * block + row * tile + 14 for half in range(2) for row in range(len(rows))]
    )
    axis.set_yticklabels(names * 2, fontsize=7)
    axis.set_xticks([(digit % 5) * (shown * tile + 6) + shown * tile / 2 for digit in range(5)])
    axis.set_xticklabels([f"digits {d} (top), {d + 5} (bottom)" for d in range(5)], fontsize=7)
    axis.tick_params(length=0)
    for spine in axis.spines.values():
        spine.set_visible(False)
    axis.set_title(
        f"{config.describe()}\nper digit, rows: {', '.join(names)} (test images)", fontsize=9
    )
    run.save_figure(figure, "grid")

    history = run.history()
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for column, label in CURVE_NAMES.items():
        if column in history:
            axis.semilogy(history["epoch"], history[column], marker="o", label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test MSE")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title(config.describe(), fontsize=8)
    axis.legend()
    axis.grid(alpha=0.3)
    run.save_figure(figure, "curves")


def _mosaic(rows, shown: int) -> np.ndarray:
    """One image: two bands of five digits, each digit a block of `len(rows)` x `shown`
    28x28 tiles (2-pixel gaps, 6 between digits), background 1 (white)."""
    tile, gap = 28, 2
    block_height = len(rows) * (tile + gap) + 6
    block_width = shown * (tile + gap) + 6
    mosaic = np.ones((2 * block_height, 5 * block_width), np.float32)
    for digit in range(10):
        top, left = (digit // 5) * block_height, (digit % 5) * block_width
        for row, pictures in enumerate(rows):
            for column in range(shown):
                y, x = top + row * (tile + gap), left + column * (tile + gap)
                picture = pictures[digit * shown + column]
                mosaic[y : y + tile, x : x + tile] = picture.reshape(28, 28)
    return mosaic
