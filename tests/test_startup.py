"""Quick starts (issue 19): what `foley --help` imports, and the hand-written parts that keep a cold start short
equal to the library code they replace. No timing here: bench/startup.py measures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ("torch", "numpy", "pydantic", "transformers", "diffusers", "librosa", "scipy", "importlib.metadata")


def test_importing_the_cli_imports_nothing_heavy():
    code = f"import json, sys, foley.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_help_imports_nothing_heavy_and_still_lists_the_train_families():
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom foley.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0 and 'generate' in r.output\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    from typer.testing import CliRunner

    from foley.cli import app

    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for name in ("ldm", "lm", "codec", "clap"):
        assert f" {name} " in r.output


def test_a_shipped_models_card_imports_its_own_family_only():
    """`foley generate -m starter-lm` reads starter-lm's card: the latent-diffusion pipeline (and diffusers' UNet)
    stays unimported; listing every card still reads them all."""
    code = ("import json, sys\nfrom foley import registry\nc = registry.card_for('starter-lm')\n"
            "seen = ['foley.families.ldm.pipeline' in sys.modules]\nregistry.cards()\n"
            "seen.append('foley.families.ldm.pipeline' in sys.modules)\n"
            "print(json.dumps([c.family, c.sample_rate > 0, seen]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["lm", True, [False, True]]


@pytest.mark.parametrize("sr,n_fft,n_mels,f_min,f_max", [
    (16000, 1024, 64, 0.0, 8000.0), (22050, 1024, 80, 0.0, 11025.0), (44100, 2048, 128, 20.0, 20000.0),
    (16000, 512, 40, 1000.0, 8000.0), (48000, 2048, 128, 1200.0, 24000.0), (16000, 1024, 64, 50.0, 7600.0)])
def test_mel_filterbank_is_librosas_bit_for_bit(sr, n_fft, n_mels, f_min, f_max):
    import librosa

    from foley.features import MelConfig, mel_filterbank

    ours = mel_filterbank(MelConfig(sample_rate=sr, n_fft=n_fft, win_length=n_fft, n_mels=n_mels, f_min=f_min,
                                    f_max=f_max))
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max).astype(np.float32)
    assert ours.dtype == np.float32 and np.array_equal(ours, ref)
