"""Train ArgMaxNet with the seed's recipe (or `--recipe improved`), then run the seed's test.

    python examples/argmax.py                                   # the seed's 100 episodes
    python examples/argmax.py --episodes 3                      # a short look
    python examples/argmax.py --recipe improved                 # Adam, batch 250: Err ~4x lower
    python examples/argmax.py --run runs/argmax/seed-100        # resumes if it holds the run

Any `zoo argmax train` flag works here. The run folder holds config.json, history.csv (one row
per episode), metrics.json, training.png, model.keras and the last committed checkpoint; a run
that is interrupted continues from its last finished episode when started again.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["argmax", "train", *sys.argv[1:]]))
