"""Files on disk, addressed only by server-made ids: jobs/<id>/, uploads/<id>.wav, studies/<id>/<key>.wav.

Client file names never become paths: an upload is streamed to a temporary file (suffix from a fixed list),
decoded with :meth:`foley.audio.Audio.load` (the real type check), and stored under a new random id.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path

from ..audio import LOAD_FORMATS, Audio
from ..errors import AudioError
from .db import ID_LENGTH

_ID = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}$")
_KEY = re.compile(r"^[0-9a-f]{8,64}$")
CHUNK = 1 << 16
# an absolute POSIX path inside text (not a URL's path: no word character, dot, colon or slash before it)
_ABS_PATH = re.compile(r"(?<![\w.~:/-])/[^\s'\"`,;()<>\[\]{}]+")


def hide_paths(value):
    """``value`` (text, or JSON-like data) with every absolute path on this machine reduced to its last
    component: responses never show the server's folders (a model folder becomes its name)."""
    if isinstance(value, dict):
        return {k: hide_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_paths(v) for v in value]
    if not isinstance(value, str) or "/" not in value:
        return value

    def short(m: re.Match) -> str:
        path = m.group(0).rstrip(".")  # a sentence's full stop is not part of the path
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or not Path("/" + parts[0]).is_dir():
            return m.group(0)  # e.g. "/v1/edits" in a message: not a folder of this machine
        return parts[-1] + m.group(0)[len(path):]

    return _ABS_PATH.sub(short, value)


class UploadError(Exception):
    """A rejected upload: ``status`` is the HTTP code, the message one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def valid_id(value: str) -> bool:
    return bool(_ID.match(value or ""))


def safe_name(filename: str | None, limit: int = 120) -> str:
    """A client file name reduced to a display label (never used as a path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")
    return base[:limit] or "upload"


class Storage:
    """The data folder's layout. Every method takes ids checked by :func:`valid_id`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("jobs", "uploads", "studies", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _check(self, value: str, pattern: re.Pattern = _ID) -> str:
        if not pattern.match(value or ""):
            raise ValueError(f"not a valid id: {value!r}")
        return value

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / self._check(job_id)

    def job_file(self, job_id: str, index: int, suffix: str) -> Path:
        return self.job_dir(job_id) / f"{int(index)}{suffix}"

    def staging_dir(self, job_id: str, attempt: int) -> Path:
        """Where one attempt of a job writes its results before they are published as ``jobs/<id>/`` (one
        rename): a hidden sibling, so a half-written result is never at the published path."""
        folder = self.root / "jobs" / f".{self._check(job_id)}.{int(attempt)}.{secrets.token_hex(4)}"
        folder.mkdir(parents=True)
        return folder

    def remove_staging(self, job_id: str) -> int:
        """Remove the staging folders of ``job_id``'s earlier attempts (their workers lost the job)."""
        import shutil

        found = list((self.root / "jobs").glob(f".{self._check(job_id)}.*"))
        for folder in found:
            shutil.rmtree(folder, ignore_errors=True)
        return len(found)

    def upload_path(self, upload_id: str) -> Path:
        return self.root / "uploads" / f"{self._check(upload_id)}.wav"

    def study_dir(self, study_id: str) -> Path:
        return self.root / "studies" / self._check(study_id)

    def study_clip(self, study_id: str, key: str) -> Path:
        return self.study_dir(study_id) / f"{self._check(key, _KEY)}.wav"

    def remove_stale(self, done_jobs: set[str]) -> int:
        """At start-up (no job running): delete what a killed server left behind -- temporary files of
        atomic writes and uploads, and the partial results of every job that is not done. Returns the
        number of files removed."""
        import shutil

        removed = 0
        for tmp in (self.root / "tmp").iterdir():
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
        for folder in (self.root / "jobs").iterdir():
            if folder.is_dir() and folder.name.startswith(".") and _ID.match(folder.name[1:33]):  # staging
                removed += sum(1 for p in folder.iterdir() if p.is_file())
                shutil.rmtree(folder, ignore_errors=True)
            elif folder.is_dir() and _ID.match(folder.name) and folder.name not in done_jobs:
                removed += sum(1 for p in folder.iterdir() if p.is_file())
                shutil.rmtree(folder, ignore_errors=True)
        for parent in ("jobs", "uploads", "studies"):
            for tmp in (self.root / parent).rglob(".*"):  # foley.fsutil.atomic_path's temporary names
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    def receive_upload(self, stream, filename: str | None, max_bytes: int) -> Audio:
        """Stream ``stream`` (a binary file object) to a temp file and decode it.

        Raises UploadError: 415 unknown type, 413 too large, 422 empty or undecodable.
        """
        ext = Path(safe_name(filename)).suffix.lower()
        if ext not in LOAD_FORMATS:
            raise UploadError(415, f"unsupported file type '{ext or '(none)'}'; upload one of "
                                   f"{', '.join(sorted(LOAD_FORMATS))}")
        fd, tmp = tempfile.mkstemp(suffix=ext, dir=self.root / "tmp")
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise UploadError(413, f"upload is over the limit of {max_bytes / 1e6:g} MB")
                    out.write(chunk)
            if total == 0:
                raise UploadError(422, "upload is empty (0 bytes)")
            try:
                return Audio.load(tmp)
            except AudioError as e:  # the message names the temp file; the client only needs the reason
                reason = str(e).split(": ", 1)[-1]
                raise UploadError(422, f"upload is not decodable audio: {reason}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
