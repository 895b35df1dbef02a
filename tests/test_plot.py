"""``diagnose --plot``: a PNG for a nan log and a healthy one, never over a file or through a
link the user did not name, and a one-line install hint without matplotlib."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from logsleuth.cli import main

from .conftest import REPO

pytest.importorskip("matplotlib")

NAN_LOG = REPO / "sample_logs" / "caffe_sudden_nan.log"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _healthy(path: Path) -> Path:
    path.write_text("".join(f"step {i} loss {3.0 / i:.4f} lr 0.001 grad_norm {1 + 1 / i:.3f}\n"
                            for i in range(1, 400)))
    return path


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("log, code", [(NAN_LOG, 1), (None, 0)])
def test_plot_writes_a_png(log: Path | None, code: int, tmp_path: Path) -> None:
    log = log or _healthy(tmp_path / "healthy.log")
    out = tmp_path / "loss.png"
    result = CliRunner().invoke(main, ["diagnose", str(log), "--oneline", "--plot", str(out)])
    assert result.exit_code == code, result.output
    data = out.read_bytes()
    width, height = _png_size(data)
    assert 600 <= width <= 2000 and 200 <= height <= 2000
    assert 5_000 < len(data) < 1_000_000
    assert [p.name for p in tmp_path.iterdir() if p.name != log.name] == ["loss.png"]  # no temporary left


def _figure(log: Path):  # type: ignore[no-untyped-def]
    from logsleuth.api import _read_sampled, diagnose
    from logsleuth.plot import diagnosis_figure

    return diagnosis_figure(diagnose(str(log)), [_read_sampled(str(log), None, None)])


def test_plot_marks_the_first_nonfinite_step_in_every_panel() -> None:
    from logsleuth.charts import NONFINITE_COLOUR

    axes = _figure(NAN_LOG).axes
    assert [ax.get_title(loc="left") for ax in axes] == ["loss", "learning rate"]
    for ax in axes:
        marks = [line for line in ax.get_lines() if line.get_color() == NONFINITE_COLOUR
                 and line.get_linestyle() == "-" and list(line.get_xdata()) == [3700, 3700]]
        assert len(marks) == 1
    assert [t.get_text() for t in axes[0].texts] == ["first non-finite: loss at step 3700"]


def test_plot_uses_a_log_axis_where_the_loss_spans_decades(tmp_path: Path) -> None:
    axes = _figure(_healthy(tmp_path / "healthy.log")).axes
    assert [ax.get_yscale() for ax in axes] == ["log", "linear", "linear"]  # loss 3 -> 0.0075; grad norm; lr
    assert not any(ax.texts for ax in axes)  # nothing went non-finite: no marker


def test_plot_never_overwrites_or_writes_through_a_link(tmp_path: Path) -> None:
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"keep")
    result = CliRunner().invoke(main, ["diagnose", str(NAN_LOG), "--plot", str(mine)])
    assert result.exit_code == 2 and "exists; pass --force" in result.stderr and mine.read_bytes() == b"keep"
    link, target = tmp_path / "link.png", tmp_path / "elsewhere.png"
    link.symlink_to(target)  # dangling
    result = CliRunner().invoke(main, ["diagnose", str(NAN_LOG), "--plot", str(link)])
    assert result.exit_code == 2 and not target.exists()
    forced = CliRunner().invoke(main, ["diagnose", str(NAN_LOG), "--plot", str(link), "--force"])
    assert forced.exit_code == 1 and not target.exists() and not link.is_symlink()  # the link is replaced
    assert link.read_bytes()[:8] == PNG_MAGIC


def test_report_refuses_a_dangling_link_like_html(tmp_path: Path) -> None:
    link, target = tmp_path / "r.json", tmp_path / "planted.json"
    link.symlink_to(target)
    result = CliRunner().invoke(main, ["diagnose", str(NAN_LOG), "--report", str(link)])
    assert result.exit_code == 2 and not target.exists()


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "loss.png"
    result = CliRunner().invoke(main, ["diagnose", str(NAN_LOG), "--plot", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.strip() == "logsleuth: error: --plot needs matplotlib: pip install 'logsleuth[plot]'"
    assert result.stdout == ""  # it fails before diagnosing


def test_plot_separates_attempts(tmp_path: Path) -> None:
    from logsleuth.api import _read_sampled, diagnose
    from logsleuth.plot import diagnosis_figure

    first, second = _healthy(tmp_path / "a.log"), tmp_path / "b.log"
    second.write_text("".join(f"step {i} loss {2.0 / i:.4f}\n" for i in range(1, 200)))
    logs = [str(first), str(second)]
    loss = diagnosis_figure(diagnose(logs), [_read_sampled(p, None, None) for p in logs]).axes[0]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["attempt 1", "attempt 2"]
    assert any(line.get_linestyle() == "--" for line in loss.get_lines())  # where attempt 2 starts
