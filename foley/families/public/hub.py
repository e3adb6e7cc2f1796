"""Where public checkpoints live under ``$FOLEY_HOME`` and how they get there: pull, import, offline errors.

Layout (``$FOLEY_HOME`` defaults to ``~/.cache/foley``)::

    hub/                     the Hugging Face cache (``foley models pull`` and automatic downloads)
    models/<org>/<name>/     folders placed by hand or by ``foley models import`` (the repository's layout)
    models.json              imported folders: name -> path, family, source, fingerprint

A folder is found in that order (imports first, so a user's copy wins). Without it, when the hub is
unreachable or ``HF_HUB_OFFLINE`` is set, :func:`locate` fails at once with the files to fetch and
where to put them; when the hub is reachable it downloads into ``hub/``. No torch is imported here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from ...errors import ModelError
from ...fsutil import write_json_atomic
from .cards import MODEL_TYPE_FAMILIES, PIPELINE_FAMILIES, HubCard

PROBE_SECONDS = 3.0  # a reachable hub answers a TCP connect well within this
FINGERPRINT_BYTES = 1 << 20  # bytes read from the start of each file for a folder fingerprint
_TRUE = ("1", "on", "yes", "true")
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_NOT_WEIGHTS = ("scheduler", "tokenizer", "tokenizer_2", "feature_extractor")
_OTHER_FORMATS = ("*.onnx", "*.msgpack", "*.h5", "*.ot", "*.gguf")
_probe_cache: dict[str, str | None] = {}


def home() -> Path:
    from ...paths import home as _home

    return _home()


def hub_cache() -> Path:
    """The Hugging Face cache used by pulls and automatic downloads: ``$FOLEY_HOME/hub``."""
    return home() / "hub"


def import_dir(name: str) -> Path:
    """Where an imported or hand-placed folder for ``name`` lives: ``$FOLEY_HOME/models/<name>``."""
    return home() / "models" / name


def index_path() -> Path:
    return home() / "models.json"


def read_index() -> dict:
    """The imported-models registry ({name: {path, family, source, mode, fingerprint, imported}})."""
    p = index_path()
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{p}: unreadable model registry ({e}); fix or delete it and re-import") from None
    if not isinstance(data, dict):
        raise ModelError(f"{p}: not a model registry (expected a JSON object); delete it and re-import")
    return data


# --- finding folders --------------------------------------------------------------------------------

def detect_family(folder: Path) -> str | None:
    """The family of a folder in a public layout (model_index.json or config.json), or None."""
    for fname, key, table in (("model_index.json", "_class_name", PIPELINE_FAMILIES),
                              ("config.json", "model_type", MODEL_TYPE_FAMILIES)):
        f = folder / fname
        if f.is_file():
            try:
                value = json.loads(f.read_text(encoding="utf-8")).get(key)
            except (OSError, json.JSONDecodeError, AttributeError):
                raise ModelError(f"{f}: unreadable JSON; re-download it") from None
            if value in table:
                return table[value]
    return None


def cached_folder(card: HubCard) -> Path | None:
    """The local folder holding ``card``'s checkpoint, or None (no network access)."""
    entry = read_index().get(card.name)
    candidates = [Path(entry["path"])] if entry and entry.get("path") else []
    candidates.append(import_dir(card.name))
    if card.family == "clap":  # where `foley eval` looks for the same files
        candidates.append(home() / "weights" / "clap-htsat-unfused")
    for c in candidates:
        if (c / card.marker).is_file():
            return c
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the core install has no hub client: only imported folders count
        return None
    hit = try_to_load_from_cache(card.repo, card.marker, cache_dir=hub_cache())
    return Path(hit).parent if isinstance(hit, str) else None


def offline_reason() -> str | None:
    """Why the hub cannot be reached right now (one phrase), or None when it can."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    target = urlparse(proxy if proxy else endpoint)
    host, port = target.hostname or "", target.port or (443 if target.scheme == "https" else 80)
    key = f"{host}:{port}"
    if key not in _probe_cache:
        _probe_cache[key] = _probe(host, port)
    return _probe_cache[key]


def _probe(host: str, port: int) -> str | None:
    """TCP-connect in a daemon thread, so a hanging DNS lookup cannot stall us past PROBE_SECONDS."""
    result: list[str | None] = []

    def run():
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
            result.append(None)
        except OSError as e:
            result.append(f"{host}:{port} is unreachable ({e.strerror or type(e).__name__})")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(PROBE_SECONDS)
    return result[0] if result else f"{host}:{port} did not answer within {PROBE_SECONDS:g} s"


def describe_files(card: HubCard) -> str:
    return ", ".join(f[:-1] if f.endswith("/*") else f for f in card.files)


def missing_message(card: HubCard, reason: str) -> str:
    """One line: why nothing was downloaded, what to fetch, where to put it, and the two commands."""
    gated = " (gated: accept its licence on that page first)" if card.gated else ""
    return (f"model '{card.name}' is not in the cache ({reason}). "
            f"Fetch {describe_files(card)} from {card.url}{gated} into {import_dir(card.name)}/ "
            f"(keeping the repository's folder layout), or download the repository anywhere and run "
            f"`foley models import DIR --name {card.name}`; with network access run `foley models pull {card.name}`")


def locate(card: HubCard, download_allowed: bool = True) -> Path:
    """The folder for ``card``: cached, else downloaded (when the hub is reachable), else a ModelError."""
    found = cached_folder(card)
    if found is not None:
        return found
    if not download_allowed:
        raise ModelError(missing_message(card, "not downloaded yet"))
    reason = offline_reason()
    if reason is not None:
        raise ModelError(missing_message(card, f"no download: {reason}"))
    return download(card)


# --- downloading ------------------------------------------------------------------------------------

def plan(card: HubCard, repo_files: list[str]) -> list[str]:
    """The repository files to fetch: those matching ``card.files``, safetensors preferred per folder."""
    wanted = [f for f in repo_files if any(fnmatch.fnmatch(f, p) for p in card.files)
              and not any(fnmatch.fnmatch(f, p) for p in _OTHER_FORMATS)]
    has_st = {os.path.dirname(f) for f in wanted if f.endswith(".safetensors")}
    return sorted(f for f in wanted if not (os.path.dirname(f) in has_st and f.endswith(_WEIGHTS)
                                              and not f.endswith(".safetensors")))


def download(card: HubCard) -> Path:
    """Download ``card``'s files into ``$FOLEY_HOME/hub``; returns the snapshot folder."""
    reason = offline_reason()
    if reason is not None:
        raise ModelError(missing_message(card, f"no download: {reason}"))
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub import errors as hf_errors

    print(f"downloading {card.name} ({'' if card.size_exact else '~'}{card.size_mb} MB) into {hub_cache()}",
          file=sys.stderr)
    try:
        files = plan(card, HfApi().list_repo_files(card.repo))
        if not any(f.endswith(card.marker) for f in files):
            raise ModelError(f"{card.url} has no {card.marker}; the repository layout changed — download it by "
                             f"hand and run `foley models import DIR --name {card.name}`")
        folder = snapshot_download(card.repo, cache_dir=hub_cache(), allow_patterns=files)
    except hf_errors.GatedRepoError:
        raise ModelError(f"{card.url} is gated: accept its licence on that page, then log in "
                         f"(`hf auth login`) or set HF_TOKEN, and pull again") from None
    except hf_errors.RepositoryNotFoundError:
        raise ModelError(f"{card.url} was not found on the hub (or needs a token: set HF_TOKEN)") from None
    except (hf_errors.HfHubHTTPError, OSError) as e:
        msg = " ".join(str(e).split())[:200]
        raise ModelError(missing_message(card, f"download failed: {msg}")) from None
    if card.family == "clap":
        _share_with_eval(Path(folder))
    return Path(folder)


def _share_with_eval(folder: Path) -> None:
    """Link a pulled CLAP into ``$FOLEY_HOME/weights/clap-htsat-unfused/``, where ``foley eval`` looks."""
    target = home() / "weights" / "clap-htsat-unfused"
    if target.exists():
        return
    target.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file():
            (target / f.name).symlink_to(f.resolve())


# --- importing --------------------------------------------------------------------------------------

def check_complete(folder: Path, family: str) -> None:
    """Fail early, naming what is missing, when a pipeline folder lacks a component or weights."""
    index = folder / "model_index.json"
    if not index.is_file():
        if not any(p.suffix in _WEIGHTS for p in folder.iterdir()):
            raise ModelError(f"{folder}: no weight file (model.safetensors or pytorch_model.bin); the download is "
                             f"incomplete")
        return
    spec = json.loads(index.read_text(encoding="utf-8"))
    missing = []
    for comp, value in spec.items():
        if comp.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        sub = folder / comp
        if not sub.is_dir():
            missing.append(f"{comp}/")
        elif comp not in _NOT_WEIGHTS and not any(p.suffix in _WEIGHTS for p in sub.iterdir()):
            missing.append(f"{comp}/ weights")
    if missing:
        raise ModelError(f"{folder}: incomplete {family} checkpoint, missing {', '.join(missing)}; download the "
                         f"whole repository folder")


def _guess_name(src: Path, family: str) -> str:
    from .cards import PUBLIC_CARDS

    for part in reversed(src.resolve().parts):  # a Hugging Face cache path: .../models--org--name/snapshots/<sha>
        if part.startswith("models--"):
            return part.removeprefix("models--").replace("--", "/")
    same = [c.name for c in PUBLIC_CARDS.values() if c.family == family and c.name.split("/")[-1] == src.name]
    return same[0] if same else src.name


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: no extra space, and survives deleting the source
    except OSError:
        shutil.copy2(src, dst)


def import_folder(src: str | os.PathLike, name: str | None = None, symlink: bool = False) -> tuple[str, Path]:
    """Register a checkpoint folder downloaded elsewhere; returns (registry name, folder now used).

    The folder's family is read from its model_index.json / config.json. Unless ``symlink``, the files
    are hard-linked (or copied across file systems) into ``$FOLEY_HOME/models/<name>``.
    """
    from .cards import PUBLIC_CARDS

    src = Path(src).expanduser()
    if not src.is_dir():
        raise ModelError(f"{src}: not a folder; pass the downloaded repository folder")
    family = detect_family(src)
    if family is None:
        raise ModelError(f"{src}: not a known checkpoint layout (no model_index.json naming an AudioLDM/AudioLDM2/"
                         f"MusicLDM/StableAudio pipeline, no config.json of type {', '.join(MODEL_TYPE_FAMILIES)})")
    check_complete(src, family)
    name = name or _guess_name(src, family)
    card = PUBLIC_CARDS.get(name)
    if card is not None and card.family != family:
        raise ModelError(f"{src} holds a {family} checkpoint, but '{name}' is a {card.family} model; "
                         f"check the folder or choose another --name")
    if symlink:
        dest = src.resolve()
    else:
        dest = import_dir(name)
        tmp = dest.with_name(f".{dest.name}.importing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, tmp, copy_function=_link_or_copy)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    index = read_index()
    index[name] = {"path": str(dest), "family": family, "source": str(src.resolve()),
                   "mode": "symlink" if symlink else "copy", "fingerprint": fingerprint(dest),
                   "imported": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(index_path(), index)
    return name, dest


# --- facts about folders ----------------------------------------------------------------------------

def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def fingerprint(folder: Path) -> str:
    """A short identity for a checkpoint folder: the hub commit of a cache snapshot, else sha256[:12] of
    every file's relative path, size and first MiB (hashing whole multi-GB files would take minutes)."""
    folder = Path(folder)
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return folder.name[:12]
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(f"{p.relative_to(folder).as_posix()}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            h.update(f.read(FINGERPRINT_BYTES))
    return h.hexdigest()[:12]
