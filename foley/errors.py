"""User-facing errors: one line that names the thing and says what to do."""

from __future__ import annotations


class FoleyError(Exception):
    """An error caused by the user's input or environment, printed as one line by the CLI."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class AudioError(FoleyError):
    """A problem with an audio file: missing, unreadable, corrupt, empty, unsupported or absurd."""


class ManifestError(FoleyError):
    """A problem with a JSONL manifest or a sidecar file."""


class RequestError(FoleyError):
    """An invalid generation or edit request."""


class ModelError(FoleyError):
    """A model that cannot be found, fetched or loaded."""


class MissingDependencyError(FoleyError):
    """An optional Python package or system program that the command needs is not installed."""
