"""The training plot of an ArgMaxNet run: loss and Err per episode, training and evaluation."""

from pathlib import Path

from zoo.runs import RunFolder, matplotlib_agg
from zoo.tasks.argmax.config import ArgMaxConfig


def plot_history(history, config: ArgMaxConfig, run: RunFolder) -> Path:
    """Saves `training.png` in the run folder: loss per instance and Err against episodes.

    Args:
        history: the run's history (`run.history()`): one row per episode.
        config: the run's config (the title names the recipe and the network).
        run: the run folder.
    """
    from matplotlib.ticker import MaxNLocator

    plt = matplotlib_agg()
    figure, (loss_axes, err_axes) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    episodes = history["epoch"]
    loss_axes.semilogy(episodes, history["loss"], label="training (episode mean)")
    loss_axes.semilogy(episodes, history["eval_loss"], label="evaluation (fresh scores)")
    loss_axes.set_ylabel("squared error per instance")
    err_axes.semilogy(episodes, history["err"], label="training (episode mean)")
    err_axes.semilogy(episodes, history["eval_err"], label="evaluation (fresh scores)")
    err_axes.set_ylabel("Err = mean(round(prediction) != argmax)")
    for axes in (loss_axes, err_axes):
        axes.set_xlabel("episode")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, which="major", alpha=0.3)
        axes.legend()
    figure.suptitle(
        f"ArgMaxNet, {config.recipe} recipe: {config.depth} x {config.block} block "
        f"(hidden {config.hidden}), {config.steps_per_episode:,} steps per episode"
    )
    return run.save_figure(figure, "training")
