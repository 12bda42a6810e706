"""Memory-informed decoder and set-min random loss on MNIST (seed 001), with pictures.

    python examples/memory_ae.py                 # the notes' comparisons in one table
    python examples/memory_ae.py --epochs 3      # shorter
    zoo memory-ae train --model setmin           # one model; see `zoo memory-ae train --help`

Every run folder holds history.csv, metrics.json, grid.png (per digit: target / memory /
memory-informed rows), curves.png, pca.npz (the fitted reducer) and model.keras.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["memory-ae", "compare", *sys.argv[1:]]))
