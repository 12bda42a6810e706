"""Train an absurdly deep residual network on MNIST with exact SGD, then evaluate it.

    python examples/deep_mnist.py                                  # 10,000 layers, 1000 steps
    python examples/deep_mnist.py --layers 1000000 --in-memory     # a million layers
    python examples/deep_mnist.py --layers 10000000 --in-memory    # the seed's main run

Any `zoo deep train` flag works. The run folder (default runs/deep/example) resumes from its
last commit if the run is interrupted, even by a kill -9.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--run" not in argv:
        argv += ["--run", "runs/deep/example"]
    run = argv[argv.index("--run") + 1]
    code = main(["deep", "train", *argv])
    sys.exit(code or main(["deep", "eval", "--run", run]))
