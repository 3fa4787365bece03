"""Learning curves: every metric of a job against seconds since training started.

matplotlib is the optional ``plot`` extra: it is imported only here, only when a plot is asked
for, and its absence is a usage error that names the extra. No pyplot: a bare ``Figure`` keeps
no global state and needs no display (headless workers, CI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rl_provider.exceptions import RLConfigError

#: File formats matplotlib writes without extra packages, by suffix.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_SIZE_INCHES = (10.0, 6.0)
_DPI = 100  # 1000 x 600 px: readable in a terminal image viewer and in a ticket
_LINE_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v")
X_LABEL = "seconds since training started"
Y_LABEL = "metric value"
_EXTRA_HINT = "pip install 'airflow-provider-rl[plot]'"


def check_target(path: Path) -> None:
    """Refuse a plot that cannot be written, before anything is asked of the backend."""
    if path.suffix.lower() not in FORMATS:
        raise RLConfigError(
            f"--plot {path}: unknown image type {path.suffix or '(no suffix)'!r}; "
            f"name the file with one of {', '.join(FORMATS)} (e.g. curve.png)."
        )
    if path.is_dir():
        raise RLConfigError(
            f"--plot {path} is a directory: name a file in it, e.g. {path}/curve.png."
        )
    parent = path.resolve().parent
    if not parent.is_dir():
        raise RLConfigError(
            f"--plot {path}: directory {parent} does not exist; create it or pick another path."
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RLConfigError(
            f"--plot needs matplotlib, which is not installed: {_EXTRA_HINT}."
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveLine:
    """One plotted line, read back from the figure."""

    label: str
    points: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LearningCurve:
    """A drawn figure and what it shows (read back from matplotlib, not from the input)."""

    figure: Any  # matplotlib.figure.Figure (not imported at module level)
    title: str
    x_label: str
    y_label: str
    width_px: int
    height_px: int
    lines: tuple[CurveLine, ...]

    @classmethod
    def build(
        cls,
        series: Mapping[str, Sequence[tuple[float, float]]],
        *,
        start: float,
        title: str,
    ) -> LearningCurve:
        """One labelled line per metric; x = timestamp - ``start`` (epoch seconds)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise RLConfigError(
                f"Plotting needs matplotlib, which is not installed: {_EXTRA_HINT}."
            ) from None
        figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
        axes = figure.add_subplot()
        drawn = [(metric, points) for metric, points in sorted(series.items()) if points]
        for index, (metric, points) in enumerate(drawn):
            xs = [timestamp - start for timestamp, _ in points]
            ys = [value for _, value in points]
            # Metrics often coincide (Ray 2.x prints episode_return_* and the SDK-era
            # episode_reward_* with the same values): a line style per metric keeps a line
            # drawn over another one visible. Markers make sparse series readable.
            axes.plot(
                xs,
                ys,
                label=metric,
                linestyle=_LINE_STYLES[index % len(_LINE_STYLES)],
                marker=_MARKERS[index % len(_MARKERS)] if len(xs) <= 50 else None,
                markersize=4,
                linewidth=1.6,
            )
        axes.set_title(title)
        axes.set_xlabel(X_LABEL)
        axes.set_ylabel(Y_LABEL)
        axes.grid(alpha=0.3)
        axes.legend(loc="best")
        width, height = (round(v * figure.dpi) for v in figure.get_size_inches())
        return cls(
            figure=figure,
            title=axes.get_title(),
            x_label=axes.get_xlabel(),
            y_label=axes.get_ylabel(),
            width_px=width,
            height_px=height,
            lines=tuple(
                CurveLine(label=str(line.get_label()), points=len(cast(Sized, line.get_xdata())))
                for line in axes.get_lines()
            ),
        )

    def save(self, path: Path) -> None:
        self.figure.savefig(path, format=FORMATS[path.suffix.lower()], dpi=_DPI)

    def summary(self) -> dict[str, Any]:
        """What the figure shows, for ``--json`` (scripts and tests check the picture by it)."""
        return {
            "Title": self.title,
            "XLabel": self.x_label,
            "YLabel": self.y_label,
            "Width": self.width_px,
            "Height": self.height_px,
            "Lines": [{"Label": line.label, "Points": line.points} for line in self.lines],
        }
