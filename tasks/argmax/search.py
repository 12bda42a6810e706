"""`zoo argmax tune`: a keras-tuner random search over ArgMaxHyperModel in its own run folder.

Each search lives in a run folder of the task `"argmax-tune"`: `config.json` holds the search's
settings, `search/` keras-tuner's state, `trials.csv` every trial with the architecture it
built. A search is only continued with `--resume DIR`, and only with the settings it was started
with (more `--trials` are allowed), so `trials.csv` never pairs one search's scores with another
search's architectures.
"""

from pathlib import Path
from typing import Optional

import keras

from zoo.errors import RunFolderError, UsageError
from zoo.runs import CONFIG, RunFolder, read_json
from zoo.tasks.argmax.budget import count_parameters
from zoo.tasks.argmax.config import ArgMaxTuneConfig, largest_divisor
from zoo.tasks.argmax.data import score_dataset
from zoo.tasks.argmax.hypermodel import ArgMaxHyperModel, require_keras_tuner
from zoo.tasks.argmax.training import EVAL_SEED_OFFSET

TUNE_TASK = "argmax-tune"
TRIALS = "trials.csv"


def open_search(
    config: ArgMaxTuneConfig,
    run: Optional[str] = None,
    resume: Optional[str] = None,
    given: Optional[dict] = None,
) -> RunFolder:
    """The search's run folder: a new one (`run`, or `runs/argmax-tune/<UTC time>/`), or the
    existing search `resume`, whose saved settings must match the ones `given`."""
    if run and resume:
        raise UsageError("give --run (a new search) or --resume (an existing one), not both.")
    if resume:
        path = Path(resume)
        if not (path / CONFIG).is_file():
            raise RunFolderError(f"--resume {path} holds no search to resume (no {CONFIG}).")
        return RunFolder.open(path, TUNE_TASK, config, given=given)
    if run and (Path(run) / CONFIG).is_file():
        record = read_json(Path(run) / CONFIG)
        if isinstance(record, dict) and record.get("task") == TUNE_TASK:
            raise RunFolderError(
                f"--run {run} already holds a search: continue it with --resume {run}, "
                "or pick a new folder."
            )
    return RunFolder.open(run, TUNE_TASK, config, given=given, resume=False)


def make_hypermodel(config: ArgMaxTuneConfig) -> ArgMaxHyperModel:
    """The hypermodel of a search's settings."""
    return ArgMaxHyperModel(
        budget=config.budget,
        max_depth=config.max_depth,
        blocks=config.blocks,
        learning_rates=(config.min_learning_rate, config.max_learning_rate),
        steps_per_execution=largest_divisor(config.steps, 250),
    )


def tune(run: RunFolder, verbose: int = 0):
    """Runs (or continues) the search in `run` (opened with `open_search`); returns every
    trial as a DataFrame sorted by validation Err, also written to `trials.csv`."""
    import keras_tuner

    require_keras_tuner()
    config = run.config
    keras.utils.set_random_seed(config.seed)
    hypermodel = make_hypermodel(config)
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_err", "min"),
        max_trials=config.trials,
        directory=str(run.path),
        project_name="search",
        seed=config.seed,
        overwrite=False,
    )
    run.mark_running()
    tuner.search(
        score_dataset(config.batch_size, config.steps, seed=config.seed),
        epochs=1,
        steps_per_epoch=config.steps,
        validation_data=score_dataset(
            config.validation_batch_size,
            config.validation_batches,
            seed=config.seed + EVAL_SEED_OFFSET,
        ),
        verbose=verbose,
    )
    frame = trials_frame(tuner, hypermodel)
    run.write_csv(TRIALS, frame)
    best = frame.iloc[0]
    run.mark_finished(
        trials=len(frame),
        best_trial=str(best["trial"]),
        best_val_err=best["val_err"],
        best_parameters=int(best["parameters"]),
    )
    return frame


def trials_frame(tuner, hypermodel: ArgMaxHyperModel):
    """One row per trial: its hyperparameters, the width and parameter count it built, its
    validation Err and status; sorted by validation Err (unfinished trials last)."""
    import pandas as pd

    rows = []
    for trial in tuner.oracle.trials.values():
        hp = trial.hyperparameters
        depth, hidden, block = hypermodel.architecture(hp)
        has_score = trial.metrics.exists("val_err")
        rows.append(
            {
                "trial": trial.trial_id,
                "depth": depth,
                "block": block,
                "width_fraction": hp.get("width_fraction"),
                "hidden": hidden,
                "parameters": count_parameters(depth, hidden, block),
                "learning_rate": hp.get("learning_rate"),
                "val_err": trial.metrics.get_best_value("val_err") if has_score else None,
                "status": trial.status,
            }
        )
    return pd.DataFrame(rows).sort_values(["val_err", "trial"], na_position="last")
