"""`zoo reasoning-ops run` and `zoo reasoning-ops report` (light: no TensorFlow, keras-tuner,
pandas or matplotlib until a handler runs).

`run --run DIR` runs or resumes the sweep in DIR (a new `runs/reasoning-ops/<time>/` without
`--run`). The folder's saved config is the truth: resuming with another `--profile`,
`--tasks`, `--datasets`, `--networks` or `--seed` is a one-line error naming each flag and both
values. `--workers N` starts a chief and N local worker processes on the folder; a process with
`KERASTUNER_TUNER_ID` set to anything but `chief...` is a worker: it reads the folder's config
and writes nothing of its own there. The execution flags (`--workers`, `--port`,
`--trials-per-process`, `--audit-log`, `--quiet`) are not part of the sweep's config.

`report --run DIR` writes `results.csv`, `pivot.csv` and `heatmap.png` into DIR;
`report --results CSV` writes `<prefix>_pivot.csv` and `<prefix>_heatmap.png` beside a results
CSV (how `docs/reasoning_*_heatmap.png` are made). A damaged trial file is a one-line error
naming every such file.
"""

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from zoo.config import add_config_arguments, config_from_args, config_from_dict, given_flags
from zoo.errors import UsageError
from zoo.tasks.reasoning_ops.config import SweepConfig

TASK = "reasoning-ops"
MAX_WORKERS = 64


def register(subparsers) -> None:
    """Adds `reasoning-ops run` and `reasoning-ops report` to the `zoo` parser."""
    parser = subparsers.add_parser(
        TASK,
        help="reasoning-operations sweep on keras-tuner (seed 004)",
        description="The seed's grid of experiments (task x dataset x network) on keras-tuner.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run or resume a sweep (--workers N: a chief and N local workers)",
        description="Runs or resumes the sweep in --run; the folder's saved config is the truth.",
    )
    run.add_argument(
        "--run",
        default=None,
        help="the sweep's run folder; resumes it if it holds a sweep "
        "(default: a new runs/reasoning-ops/<UTC time>/)",
    )
    add_config_arguments(run, SweepConfig)
    run.add_argument(
        "--workers",
        type=int,
        default=0,
        help="local worker processes beside a chief (default: 0, this process runs the sweep)",
    )
    run.add_argument(
        "--port", type=int, default=8000, help="the chief's port with --workers (default: 8000)"
    )
    run.add_argument(
        "--trials-per-process",
        type=int,
        default=200,
        help="a process re-executes itself after this many experiments, freeing "
        "TensorFlow's compiled programs; 0: never (default: 200)",
    )
    run.add_argument(
        "--audit-log", default=None, help="append a JSON line per experiment start and end (tests)"
    )
    run.add_argument(
        "--quiet", action="store_true", help="no progress line per experiment, only the summary"
    )
    run.set_defaults(handler=_run)

    report = commands.add_parser(
        "report",
        help="results CSV, pivot table and heat map of a sweep",
        description="Report of a sweep's run folder (--run) or of a results CSV (--results).",
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--run", help="the sweep's run folder (writes results.csv, pivot.csv, heatmap.png into it)"
    )
    source.add_argument("--results", help="a results CSV such as docs/reasoning_seed_results.csv")
    report.add_argument(
        "--output",
        default=None,
        help="with --results: write <OUTPUT>_pivot.csv and <OUTPUT>_heatmap.png "
        "(default: the CSV's path without _results.csv)",
    )
    report.set_defaults(handler=_report)


def _check_execution_flags(args) -> None:
    if not 0 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"`--workers` must be in [0, {MAX_WORKERS}], got {args.workers}.")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"`--port` must be in [1, 65535], got {args.port}.")
    if args.trials_per_process < 0:
        raise UsageError(f"`--trials-per-process` must be >= 0, got {args.trials_per_process}.")


def _is_worker() -> bool:
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    return bool(os.environ.get("KERASTUNER_ORACLE_IP")) and not (tuner_id or "").startswith("chief")


def worker_config(path, given: dict) -> SweepConfig:
    """A worker's config: the folder's saved one when it holds a sweep (the given flags must
    match it), else the flags' (a worker on another machine). Reads only."""
    from zoo.runs import CONFIG, reconcile_config
    from zoo.tasks.reasoning_ops.report import check_run_folder

    if path is None:
        raise UsageError("a worker (KERASTUNER_TUNER_ID set) needs --run, the sweep's folder.")
    if not (Path(path) / CONFIG).is_file():
        return SweepConfig(**given)
    saved = config_from_dict(SweepConfig, check_run_folder(path))
    extended = reconcile_config(saved, given, f"work on {path}")
    return dataclasses.replace(saved, **extended) if extended else saved


def _restart_argv(run_path: Path) -> list:
    argv = list(sys.orig_argv)
    return argv if "--run" in argv else argv + ["--run", str(run_path)]


def _run(args) -> int:
    from zoo.runs import RunFolder

    _check_execution_flags(args)
    given = given_flags(args, SweepConfig)
    config = config_from_args(SweepConfig, args)
    execution = ["--trials-per-process", str(args.trials_per_process)]
    execution += ["--audit-log", args.audit_log] if args.audit_log else []
    execution += ["--quiet"] if args.quiet else []
    if args.workers:
        with RunFolder.open(args.run, TASK, config, given=given, root="runs") as run:
            if run.status == "finished":
                return _already_finished(run)
            path = run.path
        print(f"sweep {path}: a chief and {args.workers} workers", flush=True)
        return launch(path, args.workers, args.port, execution)

    run = None
    if _is_worker():
        config, path = worker_config(args.run, given), Path(args.run)
    else:
        run = RunFolder.open(args.run, TASK, config, given=given, root="runs")
        config, path = run.config, run.path
        if run.status == "finished":
            return _already_finished(run)

    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from zoo.tasks.reasoning_ops.sweep import run_sweep, sweep_counts

    started = time.time()
    if run is not None and not args.quiet:
        done = sweep_counts(path)
        print(
            f"sweep {path}: {config.profile} profile, {config.experiments} experiments"
            f"{' (resuming: %d done)' % sum(done.values()) if any(done.values()) else ''}",
            flush=True,
        )
    tuner = run_sweep(
        run or path,
        config,
        audit_log=args.audit_log,
        trials_per_process=args.trials_per_process or None,
        quiet=args.quiet,
    )
    if tuner.stopped_to_restart:
        print(
            f"restarting this process after {tuner.trials_run} experiments (frees "
            f"TensorFlow's compiled programs)",
            flush=True,
        )
        if run is not None:
            run.close()
        os.execv(sys.executable, _restart_argv(path))
    if run is not None:
        counts = sweep_counts(path)
        print(
            f"sweep finished: {config.experiments} experiments ({counts['failed']} failed) "
            f"in {time.time() - started:.0f} s; `zoo reasoning-ops report --run {path}`"
        )
    return 0


def _already_finished(run) -> int:
    metrics = run.metrics()
    print(
        f"sweep {run.path} already finished ({metrics.get('experiments')} experiments, "
        f"{metrics.get('failed')} failed); nothing to do. "
        f"`zoo reasoning-ops report --run {run.path}`"
    )
    return 0


def _report(args) -> int:
    if args.output is not None and args.results is None:
        raise UsageError("`--output` goes with --results (a --run report is written into the run).")
    from zoo.tasks.reasoning_ops.report import report_from_csv, report_sweep

    if args.results is not None:
        pivot, pivot_path, heatmap_path = report_from_csv(args.results, args.output)
        written = f"{pivot_path}, {heatmap_path}"
    else:
        pivot = report_sweep(args.run)
        written = f"{Path(args.run) / 'results.csv'}, pivot.csv, heatmap.png"
    print(pivot.round(3).to_string())
    compared, cells = pivot.attrs["cells"]
    if compared < cells:
        print(
            f"pivot and heat map over the {compared} of {cells} task x dataset cells that "
            f"every network has finished"
        )
    print(f"written: {written}")
    return 0


def launch(directory, workers: int, port: int = 8000, extra=()) -> int:
    """A chief and `workers` local worker processes of `zoo reasoning-ops run --run DIR`
    (the folder's saved config says what they sweep); returns the first non-zero exit code."""
    command = [
        sys.executable,
        "-m",
        "zoo.cli",
        "reasoning-ops",
        "run",
        "--run",
        str(directory),
        *extra,
    ]
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    chief = subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": "chief"})
    time.sleep(3)
    processes = [
        subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": f"tuner{i}"})
        for i in range(workers)
    ]
    for process in processes:
        process.wait()
    chief.wait()
    return chief.returncode or max((process.returncode for process in processes), default=0)
