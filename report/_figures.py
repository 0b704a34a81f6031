r"""The report's figures drawn into PNG files: drawing only.

What a figure shows is specified by the claim that owns it
(:mod:`derivations._figures`): its theory curves come from the claim's derived
expressions, its simulated points are measured by the engine (:mod:`montecarlo`) in
:func:`report._evidence.simulate_figure`, each with the engine's interval. This module
draws that plain data with matplotlib's Agg renderer into PNG files whose bytes depend
on the data only.

A figure is a dict with keys ``id``, ``title``, ``caption``, ``xlabel``, ``ylabel``,
``xscale``, ``yscale``, ``panels`` (panel titles; one panel when it holds one empty
title), optional ``ylim`` and ``series``. A series has ``label``, ``kind``, ``panel``
(index into ``panels``), ``group`` (series of one group share a style), ``x``, ``y``
and, for ``kind == "simulation"``, ``low`` and ``high`` (the interval of each point),
``n_replicates`` and ``methods`` (of each point's estimate). Kinds: ``"theory"`` (a
line), ``"simulation"`` (points with error bars), ``"point"`` (marked points of a theory
curve).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: Output size and resolution of every PNG.
FIGSIZE, DPI = (7.0, 4.2), 110


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------

#: Styles cycled over the groups of a panel: readable in black and white.
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))
_MARKERS = ("o", "s", "^", "D", "v", "P")
_COLORS = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")


def _draw_panel(ax, fig: dict, series: list[dict], groups: list[str]) -> None:
    from matplotlib.legend_handler import HandlerTuple

    handles: dict[str, list] = {}
    log_y = fig["yscale"] == "log"
    floor = fig.get("ylim", [None])[0]
    for s in series:
        k = groups.index(s["group"]) % len(_MARKERS)
        style = {"color": _COLORS[k]}
        xs = np.array(s["x"], dtype=float)
        ys = np.array([np.nan if v is None else v for v in s["y"]], dtype=float)
        if s["kind"] == "theory":
            (h,) = ax.plot(xs, ys, linestyle=_LINESTYLES[k], linewidth=1.4, **style)
        elif s["kind"] == "point":
            (h,) = ax.plot(xs, ys, linestyle="none", marker="*", markersize=11, **style)
        else:
            low = np.array([np.nan if v is None else v for v in s["low"]], dtype=float)
            high = np.array([np.nan if v is None else v for v in s["high"]], dtype=float)
            if log_y:  # an interval reaching 0 or below runs off the bottom of a log axis
                bottom = floor if floor is not None else np.nanmin(ys[ys > 0]) / 10
                low = np.where(low > 0, low, bottom)
            # A skew-corrected interval from few replicates can lie wholly on one side of
            # its estimate; its bar is then drawn from the estimate to the far end (a superset).
            h = ax.errorbar(
                xs,
                ys,
                yerr=np.clip(np.vstack([ys - low, high - ys]), 0, None),
                linestyle="none",
                marker=_MARKERS[k],
                markersize=4,
                markerfacecolor="white",
                capsize=2,
                elinewidth=0.8,
                **style,
            )
        handles.setdefault(s["group"], []).append((h, s["label"]))
    if len(handles) != len(series):  # pair each group's line with its points
        hs = [tuple(h for h, _ in v) for v in handles.values()]
        ax.legend(
            hs,
            list(handles),
            handler_map={tuple: HandlerTuple(ndivide=None)},
            fontsize=7,
            loc="best",
        )
    else:
        ax.legend(
            [v[0][0] for v in handles.values()],
            [v[0][1] for v in handles.values()],
            fontsize=7,
            loc="best",
        )


#: Fonts of the labels by language (English: matplotlib's default, so the English
#: figures keep their bytes). Chinese labels are set in a CJK font, with DejaVu Sans as
#: fallback; it comes first because the text around a formula in a label
#: (``3 阶: $x$``) is set in the first font only.
FONTS = {"zh": ["Noto Sans CJK SC", "DejaVu Sans"]}


def _load_fonts(families: list[str]) -> None:
    """Register system fonts of ``families`` that matplotlib's font cache lacks (a cache
    written before the fonts were installed)."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in set(families) - known:
        stem = family.replace(" ", "").removesuffix("SC").removesuffix("TC")
        for path in sorted(font_manager.findSystemFonts()):
            if Path(path).name.startswith(stem):
                font_manager.fontManager.addfont(path)


def render_figure(fig: dict, path: Path, lang: str = "en") -> Path:
    """Draw one figure's data into the PNG file ``path`` (deterministic bytes); its
    labels in ``lang`` are set in that language's :data:`FONTS`."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = fig.get("panels") or [""]
    columns = len(panels) if len(panels) <= 2 else 2
    rows = math.ceil(len(panels) / columns)
    size = (FIGSIZE[0], FIGSIZE[1] * (1 if rows == 1 else 0.75 * rows))
    fonts = {"font.family": FONTS[lang]} if lang in FONTS else {}
    if fonts:
        _load_fonts(FONTS[lang])
    with matplotlib.rc_context({**matplotlib.rcParamsDefault, **fonts}):
        figure = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
        for k, ax in enumerate(axes):
            mine = [s for s in fig["series"] if s.get("panel", 0) == k]
            groups = list(dict.fromkeys(s["group"] for s in fig["series"]))
            ax.set_xscale(fig["xscale"])
            ax.set_yscale(fig["yscale"])
            if "ylim" in fig:
                ax.set_ylim(*fig["ylim"])
            if k < len(panels) and panels[k]:
                ax.set_title(panels[k], fontsize=9)
            ax.grid(True, which="major", linewidth=0.4, alpha=0.5)
            ax.tick_params(labelsize=8)
            if mine:
                _draw_panel(ax, fig, mine, groups)
                if fig["xscale"] == "linear" and all(
                    float(v).is_integer() for s in mine for v in s["x"]
                ):
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if k >= len(panels):  # a grid cell with no panel: the one above gets the x axis
                ax.set_visible(False)
                axes[k - columns].tick_params(labelbottom=True)
                axes[k - columns].set_xlabel(fig["xlabel"], fontsize=9)
                continue
            if k // columns == rows - 1:
                ax.set_xlabel(fig["xlabel"], fontsize=9)
            if k % columns == 0:
                ax.set_ylabel(fig["ylabel"], fontsize=9)
        figure.suptitle(fig["title"], fontsize=10)
        figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def render_figures(data: list[dict], folder: Path, lang: str = "en") -> list[Path]:
    """Render every figure of :func:`figure_data` into ``folder/<id>.png``.

    Agg renderer, fixed size and resolution, matplotlib's default style and no
    ``Software`` metadata, so the same data gives the same bytes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [render_figure(fig, folder / f"{fig['id']}.png", lang) for fig in data]
