"""The defaults of the server's request limits, shared by `Settings`, `foley serve` and the docs.

Its own module, importing nothing, so that `foley serve --help` (and `foley --help`) need no pydantic."""

DEFAULT_MAX_PROMPT_CHARS = 500
DEFAULT_MAX_REQUEST_SECONDS = 120.0
