"""scaling_figure and memory_wall_figure: traces, exponents in the legend, log axes, captions."""
import pytest

from postlib.viz import get_caption, palette
from postlib.viz.scaling import memory_wall_figure, provenance_caption, scaling_figure


def _rows(name, exponent, mode="forward", lengths=(128, 256, 512, 1024), skip_last=False):
    rows = []
    for n in lengths:
        rows.append(dict(name=name, length=n, batch=1, d_model=64, mode=mode, time_ms=1e-3 * n**exponent,
                         peak_mem_bytes=100 * n**exponent, device="cpu", dtype="float32", status="ok"))
    if skip_last:
        rows[-1].update(status="skipped: out of memory", time_ms=None, peak_mem_bytes=None)
    return rows


PROV = {"device_name": "Test CPU", "device_type": "cpu", "torch": "2.x", "triton": "3.x", "date": "2026-01-02T00:00"}


def test_one_trace_per_name_with_fitted_exponent():
    rows = _rows("softmax", 2) + _rows("mamba", 1)
    fig = scaling_figure(rows, provenance=PROV)
    assert len(fig.data) == 2
    names = {t.name for t in fig.data}
    assert names == {"softmax  ~L^2.00", "mamba  ~L^1.00"}
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "Test CPU" in get_caption(fig) and "Test CPU" not in fig.layout.title.text
    colors = {t.name.split()[0]: t.line.color for t in fig.data}
    assert colors == {"softmax": palette.color("softmax"), "mamba": palette.color("mamba")}
    assert all(t.mode == "lines+markers" for t in fig.data)


def test_modes_split_traces_and_skipped_rows_are_omitted():
    rows = _rows("softmax", 2) + _rows("softmax", 2, mode="forward_backward", skip_last=True)
    fig = scaling_figure(rows, fit=False)
    assert sorted(t.name for t in fig.data) == ["softmax (forward)", "softmax (forward_backward)"]
    fb = next(t for t in fig.data if "backward" in t.name)
    assert list(fb.x) == [128, 256, 512]


def test_memory_metric_in_mib():
    fig = scaling_figure(_rows("a", 1), metric="peak_mem_bytes")
    assert fig.data[0].y[0] == pytest.approx(100 * 128 / 2**20)
    assert "MiB" in fig.layout.yaxis.title.text


def test_errors():
    with pytest.raises(ValueError, match="metric must be one of"):
        scaling_figure(_rows("a", 1), metric="flops")
    with pytest.raises(ValueError, match="no measurement"):
        scaling_figure(_rows("a", 1, lengths=(8,), skip_last=True))
    with pytest.raises(TypeError, match="result must be a dict"):
        memory_wall_figure([])


def test_memory_wall_figure_two_panels_with_caption():
    result = {"title": "wall", "provenance": PROV,
              "rows": _rows("softmax_attention", 2) + _rows("flash_attention (torch)", 1)}
    fig = memory_wall_figure(result)
    assert len(fig.data) == 4
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log"
    assert fig.layout.yaxis2.type == "log"
    assert any("~L^2.00" in t.name and "memory" in t.name for t in fig.data)
    # provenance in the caption, never on the plot (it used to sit over the x-axis title)
    assert "Measured on Test CPU" in get_caption(fig)
    assert not any("Test CPU" in (a.text or "") for a in fig.layout.annotations)
    assert "wall" in get_caption(fig)


def test_provenance_caption():
    assert provenance_caption(None) == ""
    cap = provenance_caption({**PROV, "capability": "8.0", "load_avg_1m_5m_15m": [1.5, 1, 1]})
    assert "sm 8.0" in cap and "2026-01-02" in cap and "load 1.5" in cap
