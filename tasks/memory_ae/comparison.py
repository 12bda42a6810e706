"""The notes' comparisons in one command: every variant a resumable sub-run, then one table.

`<run>/<variant>/` is an ordinary memory-AE run folder: a finished one is skipped, an
interrupted one resumes from its committed epoch, and `--epochs` may be raised to extend all.
"""

from typing import Optional

from zoo.errors import DivergenceError
from zoo.lifecycle import tracked
from zoo.runs import RunFolder

from .config import COMPARE_TASK, CompareConfig
from .data import load_images
from .training import train


def summary_row(name: str, config, history, target_mse: float) -> dict:
    """One table row: the variant's final measures and how long it took to reach
    `target_mse`."""
    last = history.iloc[-1]
    row = {"variant": name, "wall_seconds": round(float(last["wall_seconds"]), 1)}

    def seconds_to(column):
        reached = history[history[column] <= target_mse]
        return round(float(reached["wall_seconds"].iloc[0]), 1) if len(reached) else None

    if config.model == "memory":
        row.update(
            {
                "test_mse_memory": round(float(last["test_mse_memory"]), 5),
                "test_mse_informed": round(float(last["test_mse_informed"]), 5),
                f"seconds_to_{target_mse:g}_informed": seconds_to("test_mse_informed"),
                f"seconds_to_{target_mse:g}_memory": seconds_to("test_mse_memory"),
                "slots_used": int(last["slots_used"]),
                "selection_perplexity": round(float(last["selection_perplexity"]), 2),
            }
        )
    else:
        row.update(
            {
                "test_mse_best_subnet": round(float(last["test_mse_best_subnet"]), 5),
                f"seconds_to_{target_mse:g}_best_subnet": seconds_to("test_mse_best_subnet"),
                "mean_pairwise_distance": round(float(last["mean_pairwise_distance"]), 4),
                "subnets_winning": int(last["subnets_winning"]),
            }
        )
    return row


def compare(
    config: CompareConfig,
    run_path=None,
    *,
    given: Optional[dict] = None,
    verbose=None,
    root="runs",
):
    """Trains (or resumes, or skips) every variant, writes `compare.csv`; returns the table.

    Args:
        config: the comparison's settings (on resume the saved config wins).
        run_path: the comparison's folder, or None for a new `root/memory-ae-compare/<time>`.
        given: the flags the user passed (None: all of `config`).
        verbose: Keras's `fit` verbosity.
        root: where a new folder goes when `run_path` is None.
    """
    import pandas as pd

    with RunFolder.open(run_path, COMPARE_TASK, config, given=given, root=root) as folder:
        config = folder.config
        with tracked(folder):
            images, rows = None, []
            for name in config.variants:
                variant = config.variant_config(name)
                sub_path = folder.path / name
                print(f"== {name}: {variant.describe()}", flush=True)
                if images is None and not _finished(sub_path, variant.epochs):
                    images = load_images(config.train_limit)
                try:
                    run = train(variant, sub_path, images=images, verbose=verbose)
                except DivergenceError as error:
                    raise DivergenceError(f"variant {name}: {error}") from None
                rows.append(summary_row(name, variant, run.history(), config.target_mse))
            table = pd.DataFrame(rows)
            folder.write_csv("compare.csv", table)
            folder.mark_finished(variants=list(config.variants))
        print(table.to_string(index=False))
        print(f"memory-ae compare: {len(rows)} variants; run folder {folder.path}")
    return table


def _finished(path, epochs: int) -> bool:
    """Whether the sub-run at `path` already finished `epochs` epochs (no data needed)."""
    from zoo.runs import read_json

    metrics = path / "metrics.json"
    if not metrics.exists():
        return False
    record = read_json(metrics)
    return record.get("status") == "finished" and int(record.get("epochs") or 0) >= epochs
