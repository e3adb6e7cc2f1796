"""Recipes: found and resolved independently of the working directory, overridable with --set, and a missing
warm-start folder is one line naming the script that makes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from foley.errors import FoleyError
from foley.train.loop import REPO, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_recipe_and_its_paths_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smoke = load_recipe("recipes/smoke-ldm.toml")
    assert smoke["name"] == "smoke" and "init" not in smoke["vae"] and "init" not in smoke["unet"]
    assert load_recipe("smoke-ldm") == smoke  # a bare name finds recipes/NAME.toml
    mel = load_recipe("recipes/starter-codec-mel.toml")  # [codec] vocoder = "models/starter/vocoder"
    assert Path(mel["codec"]["vocoder"]) == REPO / "models" / "starter" / "vocoder"


def test_relative_paths_in_a_recipe_outside_recipes_are_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "proj" / "base" / "unet").mkdir(parents=True)
    (tmp_path / "proj" / "r.toml").write_text('[unet]\ninit = "base"\n[audio]\ncache_dir = "cache"\n'
                                              '[lm]\ntext_encoder = "all-MiniLM-L6-v2"\n')
    monkeypatch.chdir(tmp_path)
    r = load_recipe("proj/r.toml")
    assert r["unet"]["init"] == str(tmp_path / "proj" / "base")
    assert r["audio"]["cache_dir"] == str(tmp_path / "proj" / "cache")
    assert r["lm"]["text_encoder"] == "all-MiniLM-L6-v2"  # a model name, not a path: unchanged


def test_missing_warm_start_names_the_script_that_makes_it(tmp_path, foley_cli, write_audio):
    """A fresh clone: runs/starter-v0 does not exist until recipes/starter-ldm.sh ran (copied so the check holds
    even on a machine where it did)."""
    (tmp_path / "recipes").mkdir()
    for name in ("starter-ldm.toml", "starter-ldm.sh"):
        shutil.copy(RECIPES / name, tmp_path / "recipes" / name)
    with pytest.raises(FoleyError) as e:
        load_recipe(tmp_path / "recipes" / "starter-ldm.toml")
    msg = str(e.value)
    assert "[vae] init" in msg and "runs/starter-v0/models/starter" in msg and "bash recipes/starter-ldm.sh" in msg
    write_audio(tmp_path / "a.wav")
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav", "duration": 0.5, "sample_rate": 16000, '
                                      '"description": "a tone"}\n')
    r = foley_cli("train", "ldm", "--data", tmp_path / "m.jsonl", "--recipe", tmp_path / "recipes" / "starter-ldm.toml",
                  "--run", tmp_path / "run", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "bash recipes/starter-ldm.sh" in r.stderr
    assert not (tmp_path / "run").exists()  # refused before any work


def test_overrides(tmp_path):
    r = load_recipe(RECIPES / "smoke-ldm.toml", ["unet.steps=3", "audio.stereo=lr", "train.preview_prompts=['a']",
                                                  "new.key=1.5"])
    assert r["unet"]["steps"] == 3 and r["audio"]["stereo"] == "lr" and r["train"]["preview_prompts"] == ["a"]
    assert r["new"]["key"] == 1.5


@pytest.mark.parametrize("item, words", [("unet.steps", "section.key=value"), ("=3", "section.key=value"),
                                         ("unet..steps=3", "section.key=value"), ("seed.x=1", "not a table")])
def test_bad_overrides_are_one_line(item, words):
    with pytest.raises(FoleyError, match=words):
        load_recipe(RECIPES / "smoke-ldm.toml", [item])


def test_bad_recipe_files(tmp_path):
    with pytest.raises(FoleyError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(FoleyError, match="is a folder"):
        load_recipe(tmp_path)
    (tmp_path / "bad.toml").write_text("[vae\n")
    with pytest.raises(FoleyError, match="invalid recipe"):
        load_recipe(tmp_path / "bad.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FoleyError, match="invalid recipe"):
        load_recipe(tmp_path / "bin.toml")
