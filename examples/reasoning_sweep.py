"""The reasoning-operations sweep on keras-tuner, then its report (seed 004).

    python examples/reasoning_sweep.py                        # quick profile, this process
    python examples/reasoning_sweep.py --workers 2            # a chief and 2 local workers
    python examples/reasoning_sweep.py --profile seed         # the seed's full grid (hours; resumes)

Workers on other machines: run `zoo reasoning-ops run` there with KERASTUNER_TUNER_ID=tunerN,
KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT pointing at the chief.
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    directory = argv[argv.index("--directory") + 1] if "--directory" in argv else "runs/reasoning-ops"
    code = main(["reasoning-ops", "run", *argv] + ([] if "--directory" in argv else ["--directory", directory]))
    sys.exit(code or main(["reasoning-ops", "report", "--directory", directory]))
