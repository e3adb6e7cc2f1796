"""foley/numba_warm.py: librosa's numba functions compiled once, in a child process under a lock (numba#10128)."""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from foley import numba_warm


@pytest.fixture
def tmp_marker(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # marker and lock in a fresh temporary folder
    return tmp_path


def test_warm_compiles_in_a_child_once_and_then_only_checks_the_marker(tmp_marker, monkeypatch):
    assert not numba_warm._marker().exists()
    assert numba_warm.warm() is True                          # the real child: every analyzer, both dtypes
    assert numba_warm._marker().exists() and numba_warm._lock_path().exists()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran a child although the marker exists"))
    assert numba_warm.warm() is True


def test_a_child_killed_by_a_signal_clears_the_cache_and_compiles_again(tmp_marker, monkeypatch):
    codes, said, cleared = [-11, 0], [], []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, codes.pop(0), "", ""))
    monkeypatch.setattr(numba_warm, "clear_cache", lambda: cleared.append(1) or 52)
    assert numba_warm.warm(say=said.append) is True
    assert cleared == [1] and codes == [] and "spoiled (signal 11); cleared 52 files" in said[0]
    assert numba_warm._marker().exists()


def test_a_failing_child_is_reported_and_leaves_no_marker(tmp_marker, monkeypatch):
    said = []
    monkeypatch.setattr(subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "Traceback\nImportError: no librosa"))
    assert numba_warm.warm(say=said.append) is False
    assert "exit 1): ImportError: no librosa" in said[0] and not numba_warm._marker().exists()
