"""Memory-informed decoder and set-min random loss on MNIST (seed 001), with pictures.

    python examples/memory_ae.py --run runs/memory-ae/compare    # the notes' comparisons
    python examples/memory_ae.py --epochs 3                      # shorter
    zoo memory-ae train --model setmin --run runs/memory-ae/s    # one model

Any `zoo memory-ae compare` flag works. Each variant trains in its own sub-folder of --run
(history.csv, metrics.json, grid.png with per digit the target / memory / memory-informed rows,
curves.png, pca.npz, model.keras); a rerun skips finished variants and resumes an interrupted
one; compare.csv holds the table.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["memory-ae", "compare", *sys.argv[1:]]))
