"""What the study measures of a condition, NumPy only: the subnets' specialisation (share of
wins, mutual information between winner and digit, pairwise distance) and the goal."""

import math
from typing import Optional

import numpy as np

from .study_config import GOAL_BITS, GOAL_DISTANCE_RATIO, GOAL_MSE_RATIO


def subnet_errors(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-example, per-subnet MSE, `(examples, K)`, of outputs `(examples, K, pixels)`."""
    return np.mean((outputs - targets[:, None, :]) ** 2, axis=2)


def mutual_information_bits(winners: np.ndarray, labels: np.ndarray) -> float:
    """Mutual information in bits between two discrete labelings of the same examples.

    Example:

    >>> import numpy as np
    >>> digits = np.arange(1000) % 10
    >>> round(mutual_information_bits(digits, digits), 6)  # log2(10)
    3.321928
    >>> mutual_information_bits(np.zeros(1000, int), digits)
    0.0
    """
    winners, labels = np.asarray(winners), np.asarray(labels)
    if winners.shape != labels.shape or winners.ndim != 1 or not len(winners):
        raise ValueError(
            f"winners and labels must be equal-length vectors, got {winners.shape} and "
            f"{labels.shape}."
        )
    _, winner_index = np.unique(winners, return_inverse=True)
    _, label_index = np.unique(labels, return_inverse=True)
    joint = np.zeros((winner_index.max() + 1, label_index.max() + 1))
    np.add.at(joint, (winner_index, label_index), 1.0)
    joint /= joint.sum()
    product = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    present = joint > 0
    return max(0.0, float(np.sum(joint[present] * np.log2(joint[present] / product[present]))))


def mean_pairwise_rms_distance(outputs: np.ndarray) -> float:
    """Mean over subnet pairs and examples of the RMS difference between two subnets' outputs
    `(examples, K, pixels)`; 0 for one subnet.

    Example:

    >>> import numpy as np
    >>> outputs = np.zeros((2, 3, 4))
    >>> outputs[:, 1] = 0.3  # pairs (0, 1), (1, 2) differ by 0.3; (0, 2) by 0
    >>> round(mean_pairwise_rms_distance(outputs), 6)
    0.2
    """
    subnets = outputs.shape[1]
    distances = [
        np.sqrt(np.mean((outputs[:, i] - outputs[:, j]) ** 2, axis=1)).mean()
        for i in range(subnets)
        for j in range(i + 1, subnets)
    ]
    return float(np.mean(distances)) if distances else 0.0


def specialisation(outputs: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> dict:
    """The set-min measures of one condition on a test set.

    Returns:
        `best_subnet_mse`, `rms_error` (`sqrt` of it), `pairwise_rms_distance`,
        `distance_to_error` (their ratio), `winner_class_bits`, `subnets_winning` and
        `win_share_<k>` per subnet, the winner of an example being its best subnet.
    """
    errors = subnet_errors(outputs, targets)
    winners = np.argmin(errors, axis=1)
    best = float(np.mean(errors[np.arange(len(errors)), winners]))
    distance = mean_pairwise_rms_distance(outputs)
    shares = np.bincount(winners, minlength=outputs.shape[1]) / len(winners)
    return {
        "best_subnet_mse": best,
        "rms_error": math.sqrt(best),
        "pairwise_rms_distance": distance,
        "distance_to_error": distance / math.sqrt(best) if best > 0 else float("inf"),
        "winner_class_bits": mutual_information_bits(winners, labels),
        "subnets_winning": int(np.count_nonzero(shares)),
        **{f"win_share_{k}": float(share) for k, share in enumerate(shares)},
    }


def meets_goal(row: dict, single_mse: Optional[float]) -> bool:
    """The issue's goal: winner/class information >= 0.5 bits, pairwise distance >= half the
    RMS error, best-subnet MSE within 10% of the single decoder's (which must be known)."""
    return bool(
        single_mse is not None
        and row["winner_class_bits"] >= GOAL_BITS
        and row["distance_to_error"] >= GOAL_DISTANCE_RATIO
        and row["best_subnet_mse"] <= GOAL_MSE_RATIO * single_mse
    )
