"""The reasoning-operations sweep on keras-tuner, then its report (seed 004).

    python examples/reasoning_sweep.py                             # quick profile, this process
    python examples/reasoning_sweep.py --workers 2                 # a chief and 2 local workers
    python examples/reasoning_sweep.py --profile seed --run runs/reasoning-ops/seed  # hours

The sweep goes to `--run` (default `runs/reasoning-ops/example`); running the same command
again resumes it (the folder's saved config is the truth: another --profile is an error).
Workers on other machines: run `zoo reasoning-ops run --run DIR` there with the same flags and
KERASTUNER_TUNER_ID=tunerN, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT naming the chief.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--run" not in argv:
        argv += ["--run", "runs/reasoning-ops/example"]
    run = argv[argv.index("--run") + 1]
    code = main(["reasoning-ops", "run", *argv])
    sys.exit(code or main(["reasoning-ops", "report", "--run", run]))
