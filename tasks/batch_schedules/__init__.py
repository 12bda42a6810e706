"""Increasing batch size vs learning-rate decay (seed `002`, Smith et al. 2017, arXiv 1711.00489).

The seed's simple CNN trained with plain SGD under several schedules, all with plain
`model.fit`, `zoo.callbacks.ExpDecay` and `zoo.callbacks.IncreasingBatchSize`:

- `lrd`: batch 128, `lr = 0.1 * 0.9**(epoch - 1)`.
- `ibs`: lr 0.1, `batch = int(128 * 1.037**(epoch - 1))` capped at N / 10 (the seed's numbers).
- `ibs-equivalent`: lr 0.1, the batch grown by exactly the factor lrd decays the lr (1 / 0.9 per
  epoch, the paper's rule), capped at N / 10.
- `hybrid`: both halfway: lr decays by sqrt(0.9) and the batch grows by 1 / sqrt(0.9) each epoch,
  so the SGD noise scale `lr / batch` falls as fast as under lrd (the seed's TODO, our reading).

The stages, one module each: `config` -> `data` -> `models` -> `schedules` -> `train` ->
`reporting` -> `cli`; `hypermodel` holds `SimpleCNNHyperModel` for keras-tuner. Names are
imported lazily, so `zoo.tasks.batch_schedules.cli` (and `zoo --help`) stays free of TensorFlow.
"""

from zoo._lazy import lazy_exports

_EXPORTS = {
    "ScheduleConfig": "config",
    "SCHEDULES": "config",
    "load_split_data": "data",
    "require_prepared": "data",
    "SimpleCNN": "models",
    "schedule_callbacks": "schedules",
    "run_schedules": "training",
    "train_schedule": "training",
    "summarize": "report",
    "report_run": "report",
    "SimpleCNNHyperModel": "hypermodel",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
