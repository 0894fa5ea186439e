"""Moving a HiGHS basis and a solution with the rolling horizon (warm starts between re-plans).

A re-plan one step later sees almost the same problem shifted by one step: the previous basis
moved by that shift is a far better start than a cold one (see :mod:`optimizer.dispatcher`).
"""

from __future__ import annotations

import highspy
import numpy as np

from optimizer.layout import Block

__all__ = ["BASIC", "LOWER", "STATUS", "before_last", "nonbasic_side", "shift_blocks", "within"]

#: Basis status members indexed by their code (kLower 0, kBasic 1, kUpper 2, kZero 3, ...).
STATUS = sorted(highspy.HighsBasisStatus.__members__.values(), key=lambda m: m.value)
BASIC = highspy.HighsBasisStatus.kBasic.value
LOWER = highspy.HighsBasisStatus.kLower.value
UPPER = highspy.HighsBasisStatus.kUpper.value
ZERO = highspy.HighsBasisStatus.kZero.value


def nonbasic_side(value: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Status code of each entry as if nonbasic: at its nearer finite bound, else zero."""
    near_upper = np.isfinite(upper) & (~np.isfinite(lower) | (upper - value < value - lower))
    out = np.where(near_upper, UPPER, LOWER).astype(np.int8)
    out[~np.isfinite(lower) & ~np.isfinite(upper)] = ZERO
    return out


def within(value: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        tol_lo = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(lower), lower, 0.0)))
        tol_up = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(upper), upper, 0.0)))
        return bool(np.all(value >= lower - tol_lo) and np.all(value <= upper + tol_up))


def before_last(blocks: dict[str, Block], count: int, steps: int, skip: tuple) -> np.ndarray:
    """Indices of every entry except the last ``steps`` steps of the step-indexed blocks."""
    keep = np.ones(count, dtype=bool)
    for name, block in blocks.items():
        if name not in skip and block.shape:
            keep[block.ids()[..., block.shape[-1] - steps:].ravel()] = False
    return np.flatnonzero(keep)


def shift_blocks(status: np.ndarray, blocks: dict[str, Block], steps: int, skip: tuple) -> np.ndarray:
    """Copy of ``status`` with every step-indexed block moved ``steps`` steps earlier."""
    out = status.copy()
    for name, block in blocks.items():
        if name in skip or not block.shape:
            continue
        ids = block.ids()
        prev = status[ids]
        tail = np.repeat(prev[..., -1:], steps, axis=-1)
        out[ids] = np.concatenate([prev[..., steps:], tail], axis=-1)
    return out
