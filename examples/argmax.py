"""Train ArgMaxNet with the seed's recipe (or `--recipe improved`), then run the seed's test.

    python examples/argmax.py                      # the seed's 100 episodes
    python examples/argmax.py --episodes 3         # a short look
    python examples/argmax.py --recipe improved    # Adam, batch 250: Err ~10x lower

Any `zoo argmax train` flag works here; the run folder holds history.csv, metrics.json,
training.png and model.keras.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["argmax", "train", *sys.argv[1:]]))
