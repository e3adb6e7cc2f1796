"""`foley models list|info|pull|import`: what is known, what is on this machine, and getting the rest."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ModelError
from . import app

models_app = typer.Typer(help="Known models, the local cache ($FOLEY_HOME), downloads and imports.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


def _size(nbytes: float, approx: bool = False) -> str:
    units = ("B", "KB", "MB", "GB", "TB")
    i = 0
    while nbytes >= 1000 and i < len(units) - 1:
        nbytes /= 1000
        i += 1
    return f"{'~' if approx else ''}{nbytes:.3g} {units[i]}"


def _status(card) -> tuple[str, Path | None]:
    """("shipped" | "cached" | "imported" | "missing", folder or None) without touching the network."""
    from ..families.public import hub
    from ..families.public.cards import HubCard
    from ..registry import resolve

    if not isinstance(card, HubCard):
        try:
            return "shipped", resolve(card.name)[0]
        except ModelError:
            return "missing", None
    folder = hub.cached_folder(card)
    if folder is None:
        return "missing", None
    entry = hub.read_index().get(card.name)
    imported = entry is not None and Path(entry.get("path", "")) == folder
    return ("imported" if imported or hub.import_dir(card.name) == folder else "cached"), folder


def _rows() -> list[dict]:
    from ..families.public import hub
    from ..families.public.cards import HubCard
    from ..registry import CARDS

    rows = []
    for card in CARDS.values():
        status, folder = _status(card)
        if folder is not None:
            size = _size(hub.folder_bytes(folder))
        elif isinstance(card, HubCard) and card.size_mb:
            size = _size(card.size_mb * 1e6, approx=not card.size_exact)
        else:
            size = "-"
        rows.append({"name": card.name, "family": card.family, "tasks": list(card.tasks),
                     "sample_rate": card.sample_rate, "channels": card.channels, "max_duration": card.max_duration,
                     "licence": card.licence, "status": status, "path": str(folder) if folder else None,
                     "size": size})
    from ..adapters import found

    for folder, ad in found():  # LoRA adapters under models/: loaded as BASE+ADAPTER
        base = ad["base"]
        rows.append({"name": f"{base.get('name')}+{folder.name}", "family": base.get("family"), "tasks": [],
                     "sample_rate": None, "channels": None, "max_duration": None,
                     "licence": f"adapter (data: {ad.get('licence', 'unknown')})", "status": "adapter",
                     "path": str(folder), "size": _size(hub.folder_bytes(folder))})
    for name, entry in hub.read_index().items():
        if name not in CARDS:
            ok = Path(entry.get("path", "")).is_dir()
            rows.append({"name": name, "family": entry.get("family"), "tasks": [], "sample_rate": None,
                         "channels": None, "max_duration": None, "licence": "unknown (imported folder)",
                         "status": "imported" if ok else "missing", "path": entry.get("path"),
                         "size": _size(hub.folder_bytes(Path(entry["path"]))) if ok else "-"})
    return rows


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Every known model: family, rate, channels, licence, whether it is on this machine, and its size."""
    rows = _rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    width = max(len(r["name"]) for r in rows)
    typer.echo(f"{'NAME':<{width}}  {'FAMILY':<15} {'RATE':>6} {'CH':>2}  {'STATUS':<8} {'SIZE':>9}  LICENCE")
    for r in rows:
        rate = f"{r['sample_rate'] / 1000:g}k" if r["sample_rate"] else "-"
        licence = r["licence"].split(" (")[0]
        typer.echo(f"{r['name']:<{width}}  {r['family'] or '?':<15} {rate:>6} {r['channels'] or '-':>2}  "
                   f"{r['status']:<8} {r['size']:>9}  {licence}")
    from ..registry import home

    typer.echo(f"cache: {home()}  (pull: `foley models pull NAME`; offline copy: `foley models import DIR`)")


@models_app.command()
def info(name: str = typer.Argument(..., help="A registry name, e.g. facebook/musicgen-small.")):
    """Everything about one model: card, licence, tasks, where it is (or what to fetch)."""
    from ..families.public import hub
    from ..families.public.cards import HubCard
    from ..registry import card_for

    card = card_for(name)
    if card is None:
        row = next((r for r in _rows() if r["name"] == name), None)
        if row is None:
            raise ModelError(f"unknown model '{name}'; see `foley models list`")
        for k, v in row.items():
            typer.echo(f"{k}: {v}")
        return
    status, folder = _status(card)
    lines = [("name", card.name), ("family", card.family), ("description", card.description),
             ("sample rate", f"{card.sample_rate} Hz"), ("channels", card.channels),
             ("max duration", f"{card.max_duration:g} s"), ("tasks", ", ".join(card.tasks)),
             ("licence", card.licence), ("status", status)]
    if folder is not None:
        from ..hashing import folder_hash

        lines += [("folder", folder), ("size", _size(hub.folder_bytes(folder))),
                  ("weights", f"{folder_hash(Path(folder))}  (sha256 of the safetensors files; in every sidecar)")]
        control = _control_line(Path(folder))
        if control:
            lines.append(("control", control))
    if isinstance(card, HubCard):
        lines += [("hub", card.url), ("files", hub.describe_files(card)),
                  ("download", _size(card.size_mb * 1e6, approx=not card.size_exact))]
        if card.gated:
            lines.append(("gated", "accept the licence on the hub page before pulling"))
        if card.defaults:
            lines.append(("defaults", ", ".join(f"{k}={v}" for k, v in card.defaults.items())))
        if folder is None:
            lines += [("get it", f"foley models pull {card.name}   (or: foley models import DIR --name {card.name}, "
                                 f"or put the files in {hub.import_dir(card.name)}/)")]
    elif card.recipe:
        lines.append(("recipe", card.recipe))
    for k, v in lines:
        typer.echo(f"{k + ':':<14}{v}")


def _control_line(folder: Path) -> str | None:
    """The folder's control adapter (``control/control.json``, ``foley train control``), in one line."""
    import json

    from ..hashing import CONTROL_DIR, CONTROL_JSON, base_hash

    path = folder / CONTROL_DIR / CONTROL_JSON
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return "control/ has an unreadable control.json (retrain: foley train control)"
    mine = card.get("base_weights") == base_hash(folder)
    melody = " and a melody (chroma)" if card.get("melody") else ""
    what = f"adapter over {', '.join(card.get('curves', []))}{melody}, {card.get('steps')} steps"
    return what + ("" if mine else "; trained for other weights: not used (retrain: foley train control)")


@models_app.command()
def pull(name: str = typer.Argument(..., help="A registry name (hub id), e.g. cvssp/audioldm-s-full-v2.")):
    """Download a public model into $FOLEY_HOME/hub (fails at once, saying what to do, without network)."""
    from ..families.public import hub
    from ..families.public.cards import HubCard
    from ..registry import card_for

    card = card_for(name)
    if not isinstance(card, HubCard):
        raise ModelError(f"'{name}' is not a public model that can be pulled; see `foley models list`")
    folder = hub.cached_folder(card)
    if folder is None:
        folder = hub.download(card)
    typer.echo(f"{card.name}: {folder}  ({_size(hub.folder_bytes(folder))}); licence: {card.licence}")


@models_app.command("import")
def import_(
    folder: Path = typer.Argument(..., help="A model folder downloaded elsewhere (the repository's layout)."),
    name: str = typer.Option(None, "--name", help="Registry name (hub id); default: guessed from the folder."),
    symlink: bool = typer.Option(False, "--symlink", help="Use the folder where it is instead of copying it."),
):
    """Register a downloaded folder: its type is read from model_index.json / config.json."""
    from ..families.public import hub

    reg_name, dest = hub.import_folder(folder, name=name, symlink=symlink)
    family = hub.read_index()[reg_name]["family"]
    typer.echo(f"imported {reg_name} ({family}) -> {dest}")
