"""Increasing batch size vs learning-rate decay, with plots (seed 002, Smith et al. 2017).

    python examples/ibs_vs_lrd.py            # the seed's comparison: CIFAR-10, lrd vs ibs, 150 epochs
    python examples/ibs_vs_lrd.py --quick    # a first look: MNIST, lrd vs ibs-equivalent, 30 epochs
    python examples/ibs_vs_lrd.py --schedules lrd,ibs,ibs-equivalent,hybrid --dataset fashion_mnist

Any `zoo ibs-vs-lrd` flag works; the run folder holds history.csv (a row per epoch per schedule),
summary.csv, ibs_vs_lrd.png and the models.
"""

import sys

from zoo.cli import main

QUICK = ["--dataset", "mnist", "--schedules", "lrd,ibs-equivalent", "--epochs", "30"]

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--quick" in argv:
        argv = QUICK + [flag for flag in argv if flag != "--quick"]
    sys.exit(main(["ibs-vs-lrd", *argv]))
