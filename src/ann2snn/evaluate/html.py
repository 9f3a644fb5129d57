"""The full evaluation report: Markdown + a self-contained HTML page, PNG plots, and the JSON behind them.

:func:`write_full_report` adds the cost section (:mod:`ann2snn.evaluate.cost`) and the per-layer activation error
(:mod:`ann2snn.evaluate.layer_error`) to a :class:`ConversionReport` and writes, atomically, into ``out_dir``:
``report.json``, ``report.md``, ``report.html`` (plots embedded as base64, opens offline),
``accuracy_vs_T.png``, ``firing_rates.png`` and ``layer_error.png``.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ann2snn.evaluate.cost import add_cost
from ann2snn.evaluate.layer_error import layer_error_table, layer_errors
from ann2snn.evaluate.report import ConversionReport
from ann2snn.io import atomic_path, atomic_write_text
from ann2snn.simulate.model import SpikingModel

__all__ = ["write_full_report"]


ROUND_OFF = 1e-6  # errors below this are float round-off, not conversion error


def round_off_floor(values: list[float], floor: float = ROUND_OFF) -> tuple[list[float], str | None]:
    """Values to draw (those below ``floor`` as 0) and a note when every value is below it.

    A plot of round-off (e.g. 9e-7 next to 2e-8) on an auto-scaled axis draws tall bars out of nothing;
    flooring keeps the scale honest.
    """
    drawn = [0.0 if abs(v) < floor else v for v in values]
    if values and all(abs(v) < floor for v in values):
        return drawn, f"all below {floor:g} (float round-off): no conversion error"
    return drawn, None


def _bar_png(
    path: Path,
    labels: list[str],
    values: list[float],
    ylabel: str,
    title: str,
    log: bool = False,
    floor: float | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    note = None
    if floor is not None:
        values, note = round_off_floor(values, floor)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(labels) + 2), 3.6), dpi=120)
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    if log and any(v > 0 for v in values):
        ax.set_yscale("log")
    if note is not None:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def layer_error_timesteps(snn: SpikingModel, timesteps: list[int]) -> int:
    """The T of the layer-error section: T = L for a parallel SNN of QCFS sites with one L among the evaluated
    T (where conversion is exact, so any error shows a problem), else the largest evaluated T."""
    levels = {s.levels for s in snn.sites if s.source == "qcfs"}
    if snn.execution == "parallel" and len(levels) == 1 and len(snn.sites) > 0:
        (L,) = levels
        if L in timesteps and all(s.source == "qcfs" for s in snn.sites):
            return int(L)
    return max(timesteps)


def _md_table_to_html(md: str) -> str:
    """Markdown (tables and paragraphs) to HTML: enough for the report's own sections."""
    out, table = [], False
    for line in md.splitlines():
        if line.startswith("|") and set(line.replace("|", "").strip()) <= set("-: "):
            continue
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            tag = "td" if table else "th"
            if not table:
                out.append("<table>")
                table = True
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            out.append("</table>")
            table = False
        if line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    if table:
        out.append("</table>")
    return "\n".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption>'
        "</figure>"
    )


def to_html(report: ConversionReport, plots: dict[str, Path]) -> str:
    """A self-contained HTML page of ``report`` with ``plots`` embedded."""
    sections = [f"<h2>Accuracy vs time steps</h2>{_md_table_to_html(report.accuracy_table())}"]
    sections.append(_img(plots["accuracy"], "accuracy vs T (ANN and SNN)"))
    sections.append(f"<h2>Firing rates at T = {max(report.timesteps)}</h2>{_md_table_to_html(report.firing_table())}")
    sections.append(_img(plots["firing"], "firing rate per layer"))
    for title, section in report.extra.items():
        if isinstance(section, str) and title != "Plots":
            sections.append(f"<h2>{html.escape(title)}</h2>{_md_table_to_html(section)}")
            if title.startswith("Layer error") and "layer_error" in plots:
                sections.append(_img(plots["layer_error"], "ANN-vs-SNN activation error per layer"))
    data = html.escape(report.to_json())
    about = (
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in report.about())
        + "</table>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ann2snn conversion report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
th{{background:#f3f3f3}}td:first-child{{text-align:left}}img{{max-width:100%}}pre{{background:#f7f7f7;overflow:auto}}
</style></head><body>
<h1>ann2snn conversion report</h1>
{about}
{chr(10).join(sections)}
<h2>Data</h2><details><summary>report.json</summary><pre>{data}</pre></details>
</body></html>
"""


def write_full_report(
    report: ConversionReport,
    ann: nn.Module | None,
    snn: SpikingModel,
    sample_batch: Tensor,
    out_dir: str | Path,
    *,
    stem: str = "report",
) -> dict[str, Path]:
    """Add cost and layer-error sections to ``report`` and write JSON, Markdown, HTML and PNGs to ``out_dir``.

    Args:
        report: From :func:`ann2snn.evaluate`.
        ann: The source ANN (``None``: no layer error and no ANN MACs).
        snn: The evaluated SNN.
        sample_batch: Input batch ``[B, ...]`` for the exact SOP count and the layer errors (e.g. 256 test images).
        out_dir: Output folder (created).

    Returns:
        Paths by kind: ``json``, ``markdown``, ``html``, ``plot`` (accuracy), ``firing``, ``layer_error``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_max = max(report.timesteps)
    add_cost(report, ann, snn, sample_batch, t_max)
    plots: dict[str, Path] = {}
    if ann is not None:
        t_err = layer_error_timesteps(snn, list(report.timesteps))
        errors = layer_errors(ann, snn, sample_batch, t_err)
        report.extra["layer_error"] = errors
        report.extra["layer_error_timesteps"] = t_err
        report.extra[f"Layer error at T = {t_err}"] = layer_error_table(errors, t_err)
        plots["layer_error"] = _bar_png(
            out / "layer_error.png",
            list(errors),
            [e["mean_abs_error"] for e in errors.values()],
            "mean |ANN − SNN mean output|",
            f"Activation error per layer at T = {t_err}",
            floor=ROUND_OFF,
        )
    names = list(report.firing_rates)
    plots["firing"] = _bar_png(
        out / "firing_rates.png",
        names,
        [report.firing_rates[n] for n in names],
        "spikes / neuron / step",
        f"Firing rate per layer at T = {t_max}",
    )
    md_links = ["![accuracy vs T](accuracy_vs_T.png)", "![firing rates](firing_rates.png)"]
    if "layer_error" in plots:
        md_links.append("![layer error](layer_error.png)")
    report.extra["Plots"] = "\n\n".join(md_links)
    paths = report.save(out, stem)
    plots["accuracy"] = paths["plot"]
    html_path = out / f"{stem}.html"
    atomic_write_text(html_path, to_html(report, plots))
    json.loads(paths["json"].read_text())  # the JSON must stay plain JSON
    result: dict[str, Any] = dict(paths)
    result.update(html=html_path, firing=plots["firing"])
    if "layer_error" in plots:
        result["layer_error"] = plots["layer_error"]
    return result
