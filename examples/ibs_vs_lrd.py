"""Increasing batch size vs learning-rate decay, with plots (seed 002, Smith et al. 2017).

    python examples/ibs_vs_lrd.py            # the seed's comparison: CIFAR-10, lrd vs ibs,
                                             # 150 epochs
    python examples/ibs_vs_lrd.py --quick    # a first look: MNIST, lrd vs ibs-equivalent, 30 epochs
    python examples/ibs_vs_lrd.py --quick --run runs/ibs-vs-lrd/quick --schedules \\
        lrd,ibs-equivalent,ibs,hybrid        # adds the other two schedules to that run

Any `zoo ibs-vs-lrd run` flag works; an interrupted run resumes when given the same --run. The
run folder holds history.csv (a row per epoch per schedule), summary.csv, ibs_vs_lrd.png and a
model per schedule. CIFAR-10 is never downloaded: prepare it with tfds or pass --manual-dir.
"""

import sys

from zoo.cli import main

QUICK = {"--dataset": "mnist", "--schedules": "lrd,ibs-equivalent", "--epochs": "30"}

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--quick" in argv:
        argv = [flag for flag in argv if flag != "--quick"]
        for flag, value in QUICK.items():
            if flag not in argv:
                argv = [flag, value, *argv]
    sys.exit(main(["ibs-vs-lrd", "run", *argv]))
