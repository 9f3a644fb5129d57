"""ConversionReport: accuracy vs T for the ANN and the SNN, firing rates, and the files people read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ann2snn.io import atomic_path, atomic_write_text


@dataclasses.dataclass
class ConversionReport:
    """Result of :func:`ann2snn.evaluate`. Accuracies are percentages.

    Attributes:
        snn_accuracy: accuracy at each requested T.
        snn_curve: accuracy at every t ≤ max(T) for serial SNNs (prefix reads), at each T for parallel ones.
        firing_rates: mean spikes per neuron per executed step (``presteps`` + max(T) steps), by layer.
        spikes_per_sample: spikes per input sample at max(T), by layer.
        extra: room for further sections (costs, layer errors) keyed by name.
        presteps: pre-simulation steps run before the T read steps (SRP/COS; 0 otherwise): latency is
            ``presteps + T``, and their spikes are counted in ``spikes_per_sample``.
        source: what was measured: ``model``, ``dataset``, ``split``, ``checkpoint``, ``checkpoint_sha256``,
            ``ann2snn_version`` (those known).
        timings: wall seconds of the measured work: ``convert`` and ``calibrate`` (building the SNN) and
            ``evaluate``.
    """

    method: str
    mode: str
    timesteps: list[int]
    ann_accuracy: float | None
    snn_accuracy: dict[int, float]
    snn_curve: dict[int, float]
    firing_rates: dict[str, float]
    spikes_per_sample: dict[str, float]
    neurons_per_layer: dict[str, int]
    num_samples: int
    seconds: float
    config: dict[str, Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    presteps: int = 0
    source: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def gap(self, t: int) -> float | None:
        """ANN accuracy minus SNN accuracy at T = t, in percentage points."""
        return None if self.ann_accuracy is None else self.ann_accuracy - self.snn_accuracy[t]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("snn_accuracy", "snn_curve"):
            data[key] = {str(k): v for k, v in data[key].items()}
        return data

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    def accuracy_table(self) -> str:
        """Markdown table: one row per T with ANN, SNN and gap."""
        ann = "—" if self.ann_accuracy is None else f"{self.ann_accuracy:.2f}"
        rows = ["| T | ANN (%) | SNN (%) | gap (pp) |", "|---:|---:|---:|---:|"]
        for t in self.timesteps:
            gap = self.gap(t)
            rows.append(f"| {t} | {ann} | {self.snn_accuracy[t]:.2f} | {'—' if gap is None else f'{gap:.2f}'} |")
        return "\n".join(rows)

    def firing_table(self) -> str:
        rows = [
            f"| layer | neurons | firing rate (spikes/neuron/step) | spikes/sample (mean of {self.num_samples}) |",
            "|---|---:|---:|---:|",
        ]
        for name, rate in self.firing_rates.items():
            rows.append(
                f"| {name} | {self.neurons_per_layer.get(name, 0)} | {rate:.4f} | "
                f"{self.spikes_per_sample.get(name, 0.0):.1f} |"
            )
        return "\n".join(rows)

    def wall_time(self) -> str:
        """The measured wall time in words: building (convert, calibrate) and evaluation, and their total."""
        times = {"convert": 0.0, **self.timings, "evaluate": self.timings.get("evaluate", self.seconds)}
        parts = [f"{k} {v:.1f} s" for k, v in times.items()]
        return f"{sum(times.values()):.1f} s ({', '.join(parts)})"

    def about(self) -> list[tuple[str, str]]:
        """What the report measured, as (field, value) rows: model, data, checkpoint, version, method, time."""
        src = self.source
        data = ", ".join(p for p in (src.get("dataset"), f"{src['split']} split" if src.get("split") else None) if p)
        ckpt = src.get("checkpoint")
        sha = src.get("checkpoint_sha256")
        rows = [
            ("model", str(src.get("model", "unknown"))),
            ("data", f"{data or 'unnamed data'}, {self.num_samples} samples"),
            ("checkpoint", f"{ckpt} (sha256 {sha})" if ckpt and sha else str(ckpt or "none (in-memory model)")),
            ("method", f"{self.method} ({self.mode} mode), T = {', '.join(map(str, self.timesteps))}"),
            ("ann2snn", str(src.get("ann2snn_version", "unknown"))),
            ("wall time", self.wall_time()),
        ]
        return rows

    def to_markdown(self) -> str:
        t_max = max(self.timesteps)
        lines = [
            "# ann2snn conversion report",
            "",
            "| | |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in self.about()],
            "",
            "## Accuracy vs time steps",
            "",
            self.accuracy_table(),
            "",
            f"## Firing rates at T = {t_max}",
            "",
            self.firing_table(),
        ]
        for title, section in self.extra.items():
            if isinstance(section, str):
                lines += ["", f"## {title}", "", section]
        return "\n".join(lines) + "\n"

    def figure(self) -> Any:
        """The accuracy-vs-T matplotlib figure: the evaluated T only, each with its tick label."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
        ts = sorted(self.timesteps)
        ax.plot(ts, [self.snn_accuracy[t] for t in ts], marker="o", label=f"SNN ({self.method})")
        if self.ann_accuracy is not None:
            ax.axhline(self.ann_accuracy, color="k", linestyle="--", label="ANN")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.minorticks_off()
        ax.set_xlabel("time steps T")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title("Accuracy vs time steps")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        return fig

    def plot(self, path: str | Path) -> Path:
        """Accuracy-vs-T PNG (ANN as a horizontal line), written atomically."""
        import matplotlib.pyplot as plt

        fig = self.figure()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return Path(path)

    def save(self, out_dir: str | Path, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and ``accuracy_vs_T.png`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "plot": out / "accuracy_vs_T.png"}
        self.to_json(paths["json"])
        atomic_write_text(paths["markdown"], self.to_markdown())
        self.plot(paths["plot"])
        return paths
