"""A third-party model family in a temporary package, registered only by a ``foley.families`` entry point, used
through the Python API, the CLI and the HTTP server without touching any file of foley: its capabilities (one
setting, no scheduler, progress in steps, no streaming) are what every caller asks, and its training entry becomes
``foley train toy``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from foley.audio import Audio
from foley.errors import RequestError

GEN = '''
"""A toy family: a sine whose pitch comes from the prompt; 'steps' refine nothing but report progress."""
import hashlib
import json
from pathlib import Path

import numpy as np

from foley.audio import Audio
from foley.capabilities import Capabilities, Setting
from foley.generator import Generator, ModelCard, read_foley_json


class ToyGenerator(Generator):
    def __init__(self, card):
        self.card = card

    @classmethod
    def read_card(cls, folder):
        cfg = read_foley_json(folder)
        return ModelCard(name=Path(folder).name, family="toy", weights=str(folder), sample_rate=cfg["sample_rate"],
                         channels=1, max_duration=cfg["max_duration"], tasks=("generate",),
                         defaults={"steps": 3})

    @classmethod
    def from_folder(cls, folder, card=None):
        return cls(card or cls.read_card(folder))

    @classmethod
    def capabilities_for(cls, card):
        return Capabilities(tasks=card.tasks, max_duration=card.max_duration, progress="steps",
                            settings=(Setting("steps", card.defaults["steps"], 1, 8, help="refinement passes"),))

    def _generate(self, requests):
        out = []
        for r in requests:
            steps = r.steps or self.card.defaults["steps"]
            for j in range(r.num_variations):
                for i in range(steps):
                    if self.on_step is not None:
                        self.on_step(i + 1, steps)
                f = 200 + int(hashlib.sha1(r.prompt.encode()).hexdigest(), 16) % 600
                t = np.arange(int(r.duration * self.sample_rate)) / self.sample_rate
                a = Audio((0.3 * np.sin(2 * np.pi * f * t))[None].astype(np.float32), self.sample_rate)
                seed = (r.seed or 0) + j
                a.meta = self.provenance(r, seed, j)
                out.append(a)
        return out


def train(manifests, recipe, run, stages=("fit", "export"), dest=None):
    dest = Path(dest or Path(run) / "model")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "foley.json").write_text(json.dumps({"family": "toy", "sample_rate": int(recipe["rate"]),
                                                "max_duration": 4.0}))
    return dest
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """A package `toy_family` on a path entry with an installed-distribution record declaring the entry point."""
    root = tmp_path_factory.mktemp("plugin")
    pkg = root / "toy_family"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from foley.family import Family

        FAMILY = Family(name="toy", generator="toy_family.gen:ToyGenerator", train="toy_family.gen:train",
                        stages=("fit", "export"), description="a test tone per prompt")
    '''))
    (pkg / "gen.py").write_text(GEN)
    dist = root / "toy_family-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-family\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[foley.families]\ntoy = toy_family\n")
    model = root / "toy-model"
    model.mkdir()
    (model / "foley.json").write_text(json.dumps({"family": "toy", "sample_rate": 8000, "max_duration": 4.0}))
    return {"root": root, "model": model}


@pytest.fixture
def registered(plugin, monkeypatch):
    from foley.family import families

    monkeypatch.syspath_prepend(str(plugin["root"]))
    families.cache_clear()
    yield plugin
    families.cache_clear()


def test_python_api_uses_the_plugin_family_through_its_capabilities(registered):
    import foley
    from foley.registry import describe

    card, caps = describe(str(registered["model"]))
    assert card.family == "toy" and caps.takes("steps") and not caps.takes("scheduler") and not caps.streams
    gen = foley.load(str(registered["model"]))
    seen = []
    out = gen.generate("a beep", duration=1.0, steps=4, callback_on_step_end=lambda g, i, n, info: seen.append((i, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and gen.on_step is None  # the callback is gone afterwards
    assert out[0].sample_rate == 8000 and out[0].frames == 8000
    with pytest.raises(RequestError, match="has no scheduler setting"):
        gen.generate("a beep", duration=1.0, scheduler="ddim")
    with pytest.raises(RequestError, match="outside model"):
        gen.generate("a beep", duration=1.0, steps=9)
    with pytest.raises(RequestError, match="cannot do 'style_transfer'.*models that can: starter"):
        gen.edit(Audio(np.zeros((1, 8000), np.float32) + 0.1, 8000), "x", task="style_transfer")


def _foley(plugin, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(plugin["root"]), "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "foley", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_cli_generates_refuses_and_trains_with_the_plugin_family(plugin, tmp_path):
    model = str(plugin["model"])
    r = _foley(plugin, "generate", "a beep", "-m", model, "-d", "1", "--steps", "2", "-o", "beep.wav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "beep.json").read_text())
    assert Audio.load(tmp_path / "beep.wav").sample_rate == 8000 and side["model"]["family"] == "toy"
    for bad, words in ((["--scheduler", "ddim"], "has no scheduler setting"), (["--negative", "x"], "--negative"),
                       (["-d", "9"], "maximum of 4 s")):
        r = _foley(plugin, "generate", "a beep", "-m", model, "-o", "bad.wav", *bad, cwd=tmp_path)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "bad.wav").exists()
    r = _foley(plugin, "stream", "a beep", "-m", model, "-o", "s.wav", cwd=tmp_path)
    assert r.returncode == 2 and "cannot stream" in r.stderr and "starter-lm" in r.stderr
    # its training entry is a `foley train` command with the shared options
    (tmp_path / "m.jsonl").write_text("")
    (tmp_path / "r.toml").write_text("rate = 16000\n")
    r = _foley(plugin, "train", "toy", "--data", "m.jsonl", "--recipe", "r.toml", "-o", "trained",
               "--stages", "fit,export", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "trained" / "foley.json").read_text())["sample_rate"] == 16000
    r = _foley(plugin, "train", "toy", "--data", "m.jsonl", "--recipe", "r.toml", "--stages", "bake", cwd=tmp_path)
    assert r.returncode == 2 and "choose from fit, export" in r.stderr


def test_http_server_offers_the_plugin_family_with_progress_and_refusals(registered, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app

    settings = Settings(data=tmp_path / "serve", models={"toy": str(registered["model"])})
    with TestClient(create_app(settings)) as client:
        info = next(m for m in client.get("/v1/models").json()["models"] if m["name"] == "toy")
        assert info["family"] == "toy" and [s["name"] for s in info["capabilities"]["settings"]] == ["steps"]
        assert info["capabilities"]["streams"] is False
        seen = []
        client.app.state.svc.worker.add_listener(lambda job_id, frac: seen.append(frac))
        r = client.post("/v1/generations", json={"prompt": "a beep", "duration": 1.0, "steps": 3, "seed": 1})
        assert r.status_code == 202, r.text
        end = time.monotonic() + 60
        while (job := client.get(f"/v1/generations/{r.json()['id']}").json())["status"] not in ("done", "failed"):
            assert time.monotonic() < end
            time.sleep(0.1)
        assert job["status"] == "done" and job["progress"] == 1.0 and seen, job
        for body, words in (({"scheduler": "ddim"}, "no scheduler setting"), ({"steps": 20}, "outside model"),
                            ({"guidance_scale": 2.0}, "no guidance scale setting")):
            r = client.post("/v1/generations", json={"prompt": "a beep", "duration": 1.0, **body})
            assert r.status_code == 422 and words in r.json()["detail"], r.text
