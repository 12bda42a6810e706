"""`zoo memory-ae show`: redraw a finished run's pictures from its saved model and reducer."""

from pathlib import Path

from zoo.data import load_mnist
from zoo.errors import RunFolderError
from zoo.runs import CONFIG, MODEL, RunFolder, read_json

from .config import COMPARE_TASK, TASK, MemoryAEConfig
from .data import encode, load_pca
from .plots import draw_pictures
from .training import PCA_FILE


def show(path) -> Path:
    """Redraws `grid.png` and `curves.png` of the training run at `path`; returns the folder."""
    path = Path(path)
    record = read_json(path / CONFIG) if (path / CONFIG).is_file() else None
    if isinstance(record, dict) and record.get("task") == COMPARE_TASK:
        variants = ", ".join(record.get("config", {}).get("variants", []))
        raise RunFolderError(
            f"--run {path} is a memory-ae compare folder; show one of its variants' "
            f"sub-folders ({variants})."
        )
    with RunFolder.existing(path, TASK, MemoryAEConfig(), needs=MODEL) as run:
        model = run.load_model()
        pca = load_pca(run.file(PCA_FILE))
        images, labels = load_mnist("test", as_numpy=True, flatten=True)
        draw_pictures(model, run, run.config, encode(pca, images, labels))
    print(f"memory-ae show: grid.png and curves.png redrawn in {path}")
    return path
