"""Increasing batch size vs learning-rate decay, with plots (seed 002, Smith et al. 2017).

    python examples/ibs_vs_lrd.py            # the seed's comparison: CIFAR-10, lrd vs ibs,
                                             # 150 epochs
    python examples/ibs_vs_lrd.py --quick    # a first look: MNIST, lrd vs ibs-equivalent, 30 epochs
    python examples/ibs_vs_lrd.py --quick --run runs/ibs-vs-lrd/quick --schedules \\
        lrd,ibs-equivalent,ibs,hybrid        # adds the other two schedules to that run

A thin wrapper: `python examples/ibs_vs_lrd.py FLAGS` is `zoo ibs-vs-lrd run FLAGS`, every flag
(`--quick` too) a flag of that command (`zoo ibs-vs-lrd run --help`). An interrupted run resumes
when given the same --run. The run folder holds history.csv (a row per epoch per schedule),
summary.csv, ibs_vs_lrd.png and a model per schedule.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["ibs-vs-lrd", "run", *sys.argv[1:]]))
