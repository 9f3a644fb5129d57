"""ComparisonReport: accuracy of several conversion methods of one ANN, against latency T_total = presteps + T."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from ann2snn.io import atomic_path, atomic_write_text

CSV_COLUMNS = ("method", "presteps", "timesteps", "total_timesteps", "accuracy")


@dataclasses.dataclass
class ComparisonReport:
    """Result of :func:`ann2snn.evaluate.compare.compare`. Accuracies are percentages.

    Attributes:
        methods: method labels in the order compared (``"srp:4"`` is SRP with 4 pre-simulation steps).
        timesteps: the T values (read steps after any pre-simulation).
        ann_accuracy: accuracy of the ANN on the same data.
        rows: one dict per (method, T): ``method``, ``presteps``, ``timesteps``, ``total_timesteps``, ``accuracy``.
        spikes_per_sample: spikes per input over all neuron layers at max(T), pre-simulation spikes included.
        seconds: evaluation wall time per method.
        configs: the ConversionConfig of each method (as a dict).
    """

    methods: list[str]
    timesteps: list[int]
    ann_accuracy: float | None
    rows: list[dict[str, Any]]
    spikes_per_sample: dict[str, float]
    seconds: dict[str, float]
    num_samples: int
    configs: dict[str, dict[str, Any]]

    def accuracy(self, method: str, timesteps: int) -> float:
        """Accuracy of ``method`` at T = ``timesteps`` read steps."""
        for row in self.rows:
            if row["method"] == method and row["timesteps"] == timesteps:
                return float(row["accuracy"])
        raise KeyError(f"no result for method {method!r} at T={timesteps}; have {self.methods} x {self.timesteps}")

    def by_latency(self) -> dict[int, dict[str, float]]:
        """``{T_total: {method: accuracy}}`` over every latency some method reached."""
        table: dict[int, dict[str, float]] = {}
        for row in self.rows:
            table.setdefault(int(row["total_timesteps"]), {})[row["method"]] = float(row["accuracy"])
        return dict(sorted(table.items()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """One line per (method, T) with columns :data:`CSV_COLUMNS`; written atomically to ``path`` when given."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({**row, "accuracy": f"{row['accuracy']:.2f}"})
        if path is not None:
            atomic_write_text(path, buf.getvalue())
        return buf.getvalue()

    def latency_table(self) -> str:
        """Markdown: one row per T_total, one column per method ("—" where a method has no run of that length)."""
        rows = ["| T_total | " + " | ".join(self.methods) + " |", "|---:|" + "---:|" * len(self.methods)]
        for total, accs in self.by_latency().items():
            cells = [f"{accs[m]:.2f}" if m in accs else "—" for m in self.methods]
            rows.append(f"| {total} | " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def runs_table(self) -> str:
        """Markdown: every run with its pre-simulation steps, read steps and latency."""
        rows = ["| method | presteps | T | T_total | accuracy (%) |", "|---|---:|---:|---:|---:|"]
        rows += [
            f"| {r['method']} | {r['presteps']} | {r['timesteps']} | {r['total_timesteps']} | {r['accuracy']:.2f} |"
            for r in self.rows
        ]
        return "\n".join(rows)

    def to_markdown(self) -> str:
        ann = "—" if self.ann_accuracy is None else f"{self.ann_accuracy:.2f}%"
        spikes = " | ".join(f"{m}: {self.spikes_per_sample.get(m, 0.0):.0f}" for m in self.methods)
        lines = [
            "# ann2snn method comparison",
            "",
            f"{self.num_samples} samples; ANN accuracy {ann}. Latency T_total = pre-simulation steps + T.",
            "",
            "## Accuracy (%) at equal latency",
            "",
            self.latency_table(),
            "",
            "## All runs",
            "",
            self.runs_table(),
            "",
            f"Spikes per sample at T = {max(self.timesteps)} (pre-simulation included): {spikes}",
        ]
        return "\n".join(lines) + "\n"

    def figure(self, title: str = "Accuracy vs latency") -> Any:
        """Accuracy vs T_total, one line per method, the ANN dashed; a tick label at every plotted T_total."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for method in self.methods:
            pts = sorted((r["total_timesteps"], r["accuracy"]) for r in self.rows if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        if self.ann_accuracy is not None:
            ax.axhline(self.ann_accuracy, color="k", linestyle="--", label="ANN")
        ax.set_xscale("log", base=2)
        ticks = sorted({int(r["total_timesteps"]) for r in self.rows})
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=8 if len(ticks) > 8 else None)
        ax.minorticks_off()
        ax.set_xlabel("latency T_total = presteps + T (time steps)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def plot(self, path: str | Path, title: str = "Accuracy vs latency") -> Path:
        """PNG of :meth:`figure`, written atomically."""
        import matplotlib.pyplot as plt

        fig = self.figure(title)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return Path(path)

    def save(self, out_dir: str | Path, stem: str = "compare") -> dict[str, Path]:
        """Write ``<stem>.csv``, ``.md``, ``.json`` and ``.png`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / f"{stem}.{k}" for k in ("csv", "md", "json", "png")}
        self.to_csv(paths["csv"])
        atomic_write_text(paths["md"], self.to_markdown())
        self.to_json(paths["json"])
        self.plot(paths["png"])
        return paths
