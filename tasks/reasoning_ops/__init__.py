"""Reasoning operations sweep (seed `004`, Octavian-ai/reasoning-operations) on keras-tuner.

Can small networks learn arithmetic, logic and integer operations on two 128-wide operands?
Every experiment (task x dataset x network) is one keras-tuner trial of a grid search whose
`HyperModel.fit` runs the seed's protocol: Adam + MSE at batch 32, a learning-rate search
1e-6 .. 100 (x10, 1,000 steps each) stopping early once accuracy >= 0.99, and a 30,000-step run
at the best rate when nothing solved it. Accuracy is element-wise `|pred - label| < 10**-0.5 / 2`.

Reads top to bottom, one module per stage: `config` (the sweep's config and the protocol's
profiles; standard library only) -> `data` (operands and targets) -> `models` (`ReasoningNet`)
-> `protocol` (the compiled training loop, the search, the divergence rule) -> `hypermodel`
(`ReasoningHyperModel`, the network space for keras-tuner) -> `sweep` (the grid oracle and
tuner on a run folder) -> `report` (CSV, pivot, heat map) -> `cli`.

The names below are imported lazily, on first use, so that `zoo.tasks.reasoning_ops.cli` (and
`zoo --help`) stays free of TensorFlow.
"""

from zoo._lazy import lazy_exports

_MODULES = {
    "config": (
        "ACTIVATIONS",
        "DATASETS",
        "MAX_EXAMPLES",
        "NETWORKS",
        "PROFILES",
        "PROFILE_GRIDS",
        "Protocol",
        "QUICK_NETWORKS",
        "SEED_DATASETS",
        "SEED_NETWORKS",
        "SEED_TASKS",
        "SweepConfig",
        "TASK_NAMES",
        "WIDTH",
        "parse_network",
    ),
    "data": ("TASKS", "evaluation_set", "operands", "output_width", "target", "train_batch"),
    "models": ("ReasoningNet", "build_network"),
    "protocol": ("Experiment", "run_experiment", "run_protocol"),
    "hypermodel": ("ReasoningHyperModel",),
    "sweep": (
        "ExperimentGridOracle",
        "SweepTuner",
        "grid",
        "make_tuner",
        "run_sweep",
        "sweep_counts",
    ),
    "report": (
        "COLUMNS",
        "collect",
        "complete_cells",
        "plot_heatmap",
        "read_trials",
        "report_from_csv",
        "report_sweep",
        "summarize",
    ),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
