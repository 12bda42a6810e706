"""ArgMaxNet: a small residual MLP that learns the index of the largest of 10 scores.

Seed `000` (sparseinference/argmaxnet): 3 residual blocks Block(10, 60), a Dense(10 -> 1) with
`abs` output, 3,821 parameters; scores `softmax(randn(B, 10))`, target the argmax as a float,
summed squared error, batch 25, SGD momentum 0.9 with fresh momentum each 15,000-step episode and
`lr = 1e-4 * 0.98**(episode - 1)`. Err = mean(round(pred) != label).

The modules, in the order of the experiment: `config` (settings and their bounds, stdlib
only), `budget` (parameter counts), `data`, `models`, `loops` (the compiled training and
evaluation loops), `training` (recipes and the resumable loop),
`evaluation` (the seed's test protocol), `plots`, `hypermodel` (`ArgMaxHyperModel` for
keras-tuner), `search` (`zoo argmax tune`), `cli`.

Names are imported lazily on first access, so `zoo.tasks.argmax.cli` (and `zoo --help`) stays
free of TensorFlow.
"""

from zoo._lazy import lazy_exports

_NAMES = {
    "zoo.tasks.argmax.config": (
        "ArgMaxConfig",
        "ArgMaxTestConfig",
        "ArgMaxTuneConfig",
        "IMPROVED",
        "PARAMETER_BUDGET",
        "RECIPES",
        "SCORES",
        "largest_divisor",
        "memory_needed",
        "require_memory_for",
    ),
    "zoo.tasks.argmax.budget": ("BLOCKS", "count_parameters", "widest_hidden", "within_budget"),
    "zoo.tasks.argmax.data": (
        "DATA_STREAM",
        "compiled_batches",
        "draw_batch",
        "score_batch",
        "score_dataset",
    ),
    "zoo.tasks.argmax.loops": (
        "HeldEvaluation",
        "StreamEvaluation",
        "TrainingLoop",
        "stream_evaluation",
    ),
    "zoo.tasks.argmax.models": ("ArgMaxNet", "MultiplyResidualBlock"),
    "zoo.tasks.argmax.training": (
        "EpisodeEvaluation",
        "EpisodeLine",
        "FreshOptimizerState",
        "build_model",
        "make_loss",
        "make_optimizer",
        "run_episodes",
        "train",
    ),
    "zoo.tasks.argmax.evaluation": ("evaluate", "load", "seed_test_protocol"),
    "zoo.tasks.argmax.plots": ("plot_history",),
    "zoo.tasks.argmax.hypermodel": (
        "ArgMaxHyperModel",
        "MissingExtraError",
        "require_keras_tuner",
    ),
    "zoo.tasks.argmax.search": ("open_search", "trials_frame", "tune"),
}
_MODULE_OF = {name: module.rpartition(".")[2] for module, names in _NAMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
