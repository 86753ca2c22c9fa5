"""The `stats` chart: follower growth (line) and episodes per month (bars).

matplotlib is optional (the ``charts`` extra): it is imported inside
``render_stats_chart``, and without it the function raises ImportError, which
callers answer with text only. Rendering is blocking CPU work; callers run it
off the event loop (``asyncio.to_thread``). It uses the object-oriented API
(Figure + Agg canvas, never pyplot's global state), draws with bundled fonts
only, and writes PNGs without a timestamp or version, so the same data gives
the same bytes. Renders are serialized by a lock: matplotlib's font and
text caches are not thread-safe.

Charts go to one private directory per process (``tempfile.mkdtemp``);
files older than an hour are pruned on each render, long after an adapter
has uploaded them, and so are the directories earlier processes left.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

WIDTH_PX, HEIGHT_PX, DPI = 800, 400, 100
KEEP_S = 3600
_PREFIX = "showbot-charts-"

_lock = threading.Lock()
_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class StatsChartData:
    followers: tuple[tuple[datetime, int], ...]  # oldest first
    episodes_per_month: tuple[tuple[str, int], ...]  # ('2025-07', 3), oldest first
    handle: str | None = None

    def empty(self) -> bool:
        return not self.followers and not any(n for _, n in self.episodes_per_month)

    def digest(self) -> str:
        blob = json.dumps([[(d.isoformat(), n) for d, n in self.followers],
                           list(self.episodes_per_month), self.handle])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _matplotlib() -> tuple[Any, Any, Any]:
    """(Figure, FigureCanvasAgg, matplotlib.dates), or ImportError."""
    from matplotlib import dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg, dates


def chart_dir() -> Path:
    global _dir
    if _dir is None or not _dir.is_dir():
        _dir = Path(tempfile.mkdtemp(prefix=_PREFIX))
        _remove_stale_dirs(_dir)
    return _dir


def _remove_stale_dirs(current: Path) -> None:
    """Chart directories of earlier processes (ours, untouched for KEEP_S)."""
    cutoff = time.time() - KEEP_S
    uid = os.getuid() if hasattr(os, "getuid") else None
    for old in current.parent.glob(_PREFIX + "*"):
        try:
            st = old.lstat()
            if (old == current or not old.is_dir() or old.is_symlink() or st.st_mtime >= cutoff
                    or (uid is not None and st.st_uid != uid)):
                continue
            for png in old.glob("stats-*"):
                png.unlink()
            old.rmdir()
        except OSError:
            pass


def _prune(directory: Path, keep: Path) -> None:
    cutoff = time.time() - KEEP_S
    for old in directory.glob("stats-*.png"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


def render_stats_chart(data: StatsChartData, directory: Path | None = None) -> str:
    """Draw ``data`` into a PNG and return its path. Blocking; raises
    ImportError without matplotlib."""
    Figure, FigureCanvasAgg, mdates = _matplotlib()
    with _lock:
        directory = directory or chart_dir()
        path = directory / f"stats-{data.digest()}.png"
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2)

        title = f"@{data.handle} followers" if data.handle else "Followers"
        left.set_title(title, fontsize=11)
        if len(data.followers) >= 1:
            xs = [d for d, _ in data.followers]
            ys = [n for _, n in data.followers]
            left.plot(xs, ys, color="#1d9bf0", linewidth=2, marker="o" if len(xs) < 15 else None,
                      markersize=3)
            locator = mdates.AutoDateLocator(minticks=2, maxticks=5)
            left.xaxis.set_major_locator(locator)
            left.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            left.yaxis.set_major_formatter(_thousands())
            left.grid(True, alpha=0.3)
        else:
            _no_data(left, "no follower history yet")

        right.set_title("Episodes per month", fontsize=11)
        months = list(data.episodes_per_month)
        if any(n for _, n in months):
            labels = [month_label(m, i == 0) for i, (m, _) in enumerate(months)]
            right.bar(range(len(months)), [n for _, n in months], color="#7c3aed")
            right.set_xticks(range(len(months)), labels, fontsize=8, rotation=45, ha="right")
            right.yaxis.get_major_locator().set_params(integer=True)
            right.grid(True, axis="y", alpha=0.3)
        else:
            _no_data(right, "no episodes in the last 12 months")

        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
        os.replace(tmp, path)
        _prune(directory, path)
    return str(path)


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        if abs(value) >= 10_000:
            return f"{value / 1000:.0f}k" if value % 1000 == 0 else f"{value / 1000:.1f}k"
        return f"{value:,.0f}"

    return FuncFormatter(fmt)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_label(key: str, first: bool) -> str:
    year, month = key.split("-")
    name = _MONTHS[int(month) - 1]
    return f"{name} ’{year[2:]}" if first or month == "01" else name
