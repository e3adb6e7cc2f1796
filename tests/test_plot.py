"""CLI spectrogram PNGs: log-frequency axis and a dB colour bar; a tone lands at its frequency."""

from __future__ import annotations

import numpy as np

from foley.audio import Audio
from foley.plot import save_spectrogram, spectrogram_figure
from tests.conftest import tone


def test_log_frequency_axis_and_db_colour_bar():
    fig = spectrogram_figure(Audio(tone(1.0, channels=2), 16000), title="two tones")
    panels = [ax for ax in fig.axes if ax.get_ylabel().endswith("Hz")]
    bars = [ax for ax in fig.axes if "dB" in ax.get_ylabel()]
    assert len(panels) == 2 and len(bars) == 1
    for ax in panels:
        assert ax.get_yscale() == "log"
        lo, hi = ax.get_ylim()
        assert lo == 30.0 and hi == 8000.0
    assert bars[0].get_ylim() == (-80.0, 0.0)
    mesh = panels[0].collections[0]
    spec = np.asarray(mesh.get_array()).reshape(mesh._coordinates.shape[0] - 1, -1)
    rows = mesh._coordinates[:, 0, 1]  # frequency edges
    loudest = rows[spec.mean(axis=1).argmax()]
    assert 400 < loudest < 480  # the 440 Hz tone of the left channel


def test_png_written_atomically(tmp_path):
    out = save_spectrogram(Audio(tone(0.5), 16000), tmp_path / "a.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["a.png"]
