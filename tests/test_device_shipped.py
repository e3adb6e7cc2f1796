"""Our shipped families honour FOLEY_DEVICE and --device: the CPU runs, any other device is refused in one line
(they are not silently run on the CPU)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import foley  # noqa: E402
from foley.errors import ModelError  # noqa: E402


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_non_cpu_device_is_refused_in_one_line(tiny_ldm, foley_cli, tmp_path, monkeypatch, how):
    model = str(tiny_ldm[1])
    extra = ["--device", "cuda"] if how == "option" else []
    if how == "env":
        monkeypatch.setenv("FOLEY_DEVICE", "cuda")
    r = foley_cli("generate", "a tone", "-m", model, "-d", "1", "--steps", "2", "-o", str(tmp_path / "x.wav"), *extra)
    assert r.returncode == 2 and "CPU only" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.wav").exists()


def test_cpu_and_auto_load(tiny_ldm, monkeypatch):
    model = str(tiny_ldm[1])
    assert foley.load(model, device="cpu").generate("a tone", duration=0.5, steps=2, seed=1)[0].frames > 0
    monkeypatch.setenv("FOLEY_DEVICE", "mps")
    with pytest.raises(ModelError, match="CPU only"):
        foley.load(model)
    assert foley.load(model, device="auto").card.family == "ldm"  # the argument wins over the environment
