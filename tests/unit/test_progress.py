"""Progress reporting: plain lines with elapsed seconds off a terminal, a shared rich display on one, or silence."""

from __future__ import annotations

import time

import pytest
import torch

import ann2snn as a2s
from ann2snn.evaluate import progress


def _slow(n: int, seconds: float):  # type: ignore[no-untyped-def]
    for i in range(n):
        time.sleep(seconds)
        yield i


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.05)
    monkeypatch.setattr(progress, "interactive", lambda: False)


def test_plain_lines_name_the_step_count_and_elapsed(fast_clock: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress.progress_bar(_slow(3, 0.12), "DA calibration T=2", total=3)) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("DA calibration T=2: 3/3 done in ")
    assert lines[-1].endswith(" s")
    running = lines[:-1]  # the ticker: a line while a slow item runs, with the count so far
    assert running and all(line.startswith("DA calibration T=2: ") and line.endswith(" s)") for line in running)


def test_fast_steps_and_disabled_progress_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress.progress_bar(range(4), "quick")) == [0, 1, 2, 3]  # under MIN_SECONDS
    assert list(progress.progress_bar(_slow(2, 0.01), "off", enabled=False)) == [0, 1]
    with progress.phase("off", enabled=False):
        pass
    assert capsys.readouterr().err == ""


def test_phase_prints_one_line_with_elapsed_seconds(fast_clock: None, capsys: pytest.CaptureFixture[str]) -> None:
    with progress.phase("writing the report"):
        time.sleep(0.02)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("writing the report: done in ")


def test_failed_step_prints_no_done_line(fast_clock: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), progress.phase("doomed"):
        raise RuntimeError("boom")
    assert "done" not in capsys.readouterr().err


def test_early_stop_reports_the_count_reached(fast_clock: None, capsys: pytest.CaptureFixture[str]) -> None:
    for i in progress.progress_bar(range(10), "evaluate", total=10):
        if i == 2:
            break
    assert capsys.readouterr().err.splitlines()[-1].startswith("evaluate: 2/10 stopped after ")  # items 0, 1 done


def test_nested_bars_share_one_live_display_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: True)
    with progress.phase("outer step"):
        assert len(progress._live) == 1
        assert list(progress.progress_bar(range(3), "inner step")) == [0, 1, 2]  # no rich LiveError
        assert len(progress._live) == 1
    assert progress._live == []


def test_convert_and_evaluate_report_calibration_and_evaluation_with_t(
    fast_clock: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = a2s.create_model("cnn", num_classes=4, in_channels=1, image_size=8, hidden=8)
    g = torch.Generator().manual_seed(0)
    data = [torch.rand(16, 1, 8, 8, generator=g) for _ in range(2)]
    cfg = a2s.ConversionConfig(method="parallel", timesteps=2, calibration="da", weight_refit=False)
    snn = a2s.convert(ann, cfg, calibration_data=data)
    assert set(snn.timings) == {"convert", "calibrate"}
    err = capsys.readouterr().err
    assert "thresholds from data: 2/2 done in" in err
    assert "DA calibration (match) T=2:" in err
    loader = [(x, torch.zeros(16, dtype=torch.long)) for x in data]
    a2s.evaluate(ann, snn, loader, (1, 2), progress=True)
    assert "evaluate parallel SNN T=1,2: 2/2 done in" in capsys.readouterr().err
    a2s.convert(ann, cfg, calibration_data=data, progress=False)
    assert capsys.readouterr().err == ""


def test_error_in_a_closed_loop_stops_the_ticker(fast_clock: None, capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    from contextlib import closing

    before = threading.active_count()
    with pytest.raises(ValueError), closing(progress.progress_bar(range(3), "thresholds from data")) as items:
        for _ in items:
            raise ValueError("bad batch")
    assert threading.active_count() == before  # no ticker left running
    time.sleep(0.15)
    assert "(0" not in capsys.readouterr().err  # and no "still running" lines after the error


class _SlowData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(0.04)
        return torch.full((4,), float(i)), torch.tensor(i % 2)


def test_training_off_a_terminal_prints_during_and_after_each_epoch(
    fast_clock: None, capsys: pytest.CaptureFixture[str]
) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    a2s.train(net, _SlowData(), a2s.TrainConfig(epochs=1, batch_size=4, device="cpu"), progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("training (epoch 1 of 1), steps: ") and line.endswith(" s)") for line in lines)
    assert lines[-1].startswith("epoch 1/1  loss ")
    assert not any("done in" in line for line in lines)  # the epoch summary is the step's last line
