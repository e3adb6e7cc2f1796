"""`foley eval` says what a negative KID means: an unbiased estimate of MMD^2 that small sets can push below 0."""

import json

from tests.test_eval_cli import make_set


def test_negative_kid_is_flagged_with_the_caveat(tmp_path, foley_cli, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    ref = make_set(tmp_path / "ref")
    gen = make_set(tmp_path / "gen")  # the same sounds: MMD^2 is 0, its unbiased estimate negative
    r = foley_cli("eval", "-g", gen, "-r", ref, "-o", tmp_path / "rep", "-m", "kid_logmel,fd_logmel", "--no-html")
    assert r.returncode == 0, r.stderr
    kid = json.loads((tmp_path / "rep" / "report.json").read_text())["metrics"]["kid_logmel"]
    assert kid["value"] < 0 and "unbiased estimate" in kid["note"]
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("kid_logmel"))
    assert line.rstrip().endswith("*")
    notes = [x for x in r.stdout.splitlines() if x.strip().startswith("* KID is an unbiased estimate")]
    assert len(notes) == 1 and "negative on small sets" in notes[0]
    fd_line = next(x for x in r.stdout.splitlines() if x.strip().startswith("fd_logmel"))
    assert not fd_line.rstrip().endswith("*")
