"""The sweep's tidy table (one row per case x policy) and its comparison plots.

Columns: ``case_hash``, ``policy``, one column per varied parameter (a per-node parameter
gives one column per node, ``tariff[home-1]``; empty means the base site's value), then the
chosen metrics in the sweep file's order. ``results.csv`` is always written; ``results.parquet``
too when pyarrow is installed (it is not a dependency: the CSV is the portable output).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.sweep.case import CaseResult  # noqa: E402
from sim.sweep.spec import PARAM_NAMES  # noqa: E402

__all__ = ["param_columns", "result_table", "write_plots", "write_table"]


def _flat_params(result: CaseResult) -> dict[str, object]:
    flat: dict[str, object] = {}
    for name, value in result.params.model_dump(mode="json", exclude_none=True).items():
        if isinstance(value, dict):
            flat.update({f"{name}[{key}]": value[key] for key in sorted(value)})
        else:
            flat[name] = value
    return flat


def param_columns(results: tuple[CaseResult, ...]) -> list[str]:
    """Varied parameter columns, in parameter order (per-node columns sorted by node)."""
    seen = {column for r in results for column in _flat_params(r)}
    order = {name: i for i, name in enumerate(PARAM_NAMES)}
    return sorted(seen, key=lambda c: (order[c.split("[")[0]], c))


def result_table(results: tuple[CaseResult, ...], metrics: tuple[str, ...]) -> pd.DataFrame:
    """The tidy table of ``results`` (in the given order) with the chosen ``metrics``."""
    params = param_columns(results)
    rows = []
    for result in results:
        flat = _flat_params(result)
        for outcome in result.policies:
            values = asdict(outcome.metrics)
            rows.append({"case_hash": result.case_hash, "policy": outcome.policy,
                         **{p: flat.get(p) for p in params}, **{m: values[m] for m in metrics}})
    return pd.DataFrame(rows, columns=["case_hash", "policy", *params, *metrics])


def write_table(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``results.csv`` and, if pyarrow is importable, ``results.parquet``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.csv"]
    frame.to_csv(paths[0], index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return paths
    paths.append(out_dir / "results.parquet")
    frame.to_parquet(paths[1], index=False)
    return paths


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-")


def write_plots(frame: pd.DataFrame, metrics: tuple[str, ...], out_dir: Path) -> list[Path]:
    """``plots/<metric>_vs_<parameter>.png`` for every metric and varied parameter: every case
    as a point and the mean over the other parameters as a line, one colour per policy."""
    params = [c for c in frame.columns if c not in ("case_hash", "policy", *metrics)]
    folder = out_dir / "plots"
    paths = []
    for param in params:
        if frame[param].nunique(dropna=False) < 2:
            continue
        for metric in metrics:
            if frame[metric].isna().all():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{_slug(metric)}_vs_{_slug(param)}.png"
            _plot(frame, param, metric, path)
            paths.append(path)
    return paths


def _plot(frame: pd.DataFrame, param: str, metric: str, path: Path) -> None:
    x_values = frame[param].astype("object").where(frame[param].notna(), "base")
    numeric = pd.api.types.is_numeric_dtype(frame[param]) and frame[param].notna().all()
    levels = sorted(x_values.unique(), key=lambda v: (not numeric, v if numeric else str(v)))
    position = {v: (float(v) if numeric else i) for i, v in enumerate(levels)}
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for i, (policy, group) in enumerate(frame.groupby("policy", sort=False)):
        xs = x_values[group.index].map(position)
        ax.scatter(xs, group[metric], alpha=0.4, s=18, color=f"C{i}")
        means = group[metric].groupby(xs).mean().sort_index()
        ax.plot(means.index, means.values, marker="o", color=f"C{i}", label=f"{policy} (mean)")
    if not numeric:
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {param}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)
