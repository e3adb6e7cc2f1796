"""`foley study create|list|analyse|export`: listening studies from the command line (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import FoleyError
from . import app

study_app = typer.Typer(help="Listening tests: `foley study create --name N --clips DIR --protocol ovl_rel`, "
                             "then share the link printed; `foley study analyse ID`.", no_args_is_help=True)
app.add_typer(study_app, name="study")

DATA_HELP = "The server's data folder (as given to `foley serve --data`)."


def _db(data: Path, database: str | None):
    from ..server.db import Database
    from ..server.settings import Settings
    from ..server.storage import Storage

    settings = Settings(data=data, database_url=database)
    settings.data.mkdir(parents=True, exist_ok=True)
    return settings, Database(settings.db_url), Storage(settings.data)


@study_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="Study name shown to participants."),
    clips: Path = typer.Option(..., "--clips", help="Manifest (.jsonl) or folder of generated clips."),
    protocol: str = typer.Option(..., "--protocol", help="ovl_rel, matching, emotion or ab."),
    references: Path = typer.Option(None, "--references", help="Manifest or folder of real reference clips."),
    k: int = typer.Option(4, "--k", help="matching: descriptions offered per trial."),
    repeats: int = typer.Option(1, "--repeats", help="Screening: units each participant hears twice."),
    loudness: float = typer.Option(-23.0, "--loudness", help="Normalise clips to this LUFS (EBU R128)."),
    no_normalise: bool = typer.Option(False, "--no-normalise", help="Keep the clips' own loudness."),
    data: Path = typer.Option(Path("foley-data"), "--data", help=DATA_HELP),
    database: str = typer.Option(None, "--database", help="SQLAlchemy URL (default: the data folder's)."),
    base_url: str = typer.Option("http://127.0.0.1:8000", "--base-url", help="Where `foley serve` runs."),
):
    """Build a study; prints the participant link and the owner's results link (keep its token)."""
    from ..server.studies import clips_from_path, create_study

    items = clips_from_path(clips)
    if references is not None:
        items += clips_from_path(references, reference=True)
    _, db, storage = _db(data, database)
    study, token = create_study(db, storage, name, protocol, items, {"k": k, "repeats": repeats},
                                None if no_normalise else loudness)
    base = base_url.rstrip("/")
    typer.echo(f"study {study.id}: {len(study.clips)} clips, {len(study.units)} units, protocol {protocol}")
    typer.echo(f"participant link: {base}/study/{study.id}")
    typer.echo(f"owner results:    {base}/study/{study.id}/results#token={token}")
    typer.echo("keep the owner link: its token is not stored and cannot be shown again", err=True)


@study_app.command("list")
def list_(data: Path = typer.Option(Path("foley-data"), "--data", help=DATA_HELP),
          database: str = typer.Option(None, "--database")):
    """Studies in the data folder with their participant counts."""
    from sqlalchemy import func, select

    from ..server.db import Participant, Study

    _, db, _ = _db(data, database)
    with db.session() as s:
        rows = s.execute(select(Study, func.count(Participant.id), func.count(Participant.completed_at))
                         .outerjoin(Participant).group_by(Study.id).order_by(Study.created_at)).all()
    if not rows:
        typer.echo("no studies yet: foley study create --name N --clips DIR --protocol ovl_rel")
    for st, n, done in rows:
        typer.echo(f"{st.id}  {st.protocol:8s} {len(st.clips):4d} clips  {done}/{n} finished  {st.name}")


def _load_export(target: str, data: Path, database: str | None) -> dict:
    p = Path(target)
    if p.suffix == ".json" and p.is_file():
        try:
            export = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise FoleyError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None
        if export.get("format") != "foley-study" or export.get("version") != 1:
            raise FoleyError(f"{p}: not a foley study export (format foley-study, version 1)")
        return export
    from ..server.studies import export_study

    _, db, _ = _db(data, database)
    return export_study(db, target)


@study_app.command("export")
def export(study: str = typer.Argument(..., help="Study id."),
           output: Path = typer.Option(..., "--output", "-o",
                                       help="out.json (everything) or out.csv (answers)."),
           data: Path = typer.Option(Path("foley-data"), "--data", help=DATA_HELP),
           database: str = typer.Option(None, "--database")):
    """Export a study's definition and answers (JSON) or its answers (CSV)."""
    from ..fsutil import write_json_atomic, write_text_atomic
    from ..server.analysis import answers_csv

    ex = _load_export(study, data, database)
    if output.suffix == ".csv":
        write_text_atomic(output, answers_csv(ex))
    elif output.suffix == ".json":
        write_json_atomic(output, ex)
    else:
        raise FoleyError(f"{output}: use a .json or .csv file name")
    typer.echo(f"wrote {output}")


@study_app.command("analyse")
def analyse_cmd(target: str = typer.Argument(..., help="Study id, or an export .json file."),
                data: Path = typer.Option(Path("foley-data"), "--data", help=DATA_HELP),
                database: str = typer.Option(None, "--database"),
                include_failed: bool = typer.Option(False, "--include-failed",
                                                    help="Keep participants who failed screening."),
                output: Path = typer.Option(None, "--output", "-o", help="Also write the analysis as JSON.")):
    """The same analysis as the owner's results page: means with 95 % CIs, confusion matrix, alpha."""
    from ..fsutil import write_json_atomic
    from ..server.analysis import analyse
    from ..server.report import report_text

    result = analyse(_load_export(target, data, database), include_failed=include_failed)
    typer.echo(report_text(result))
    if output is not None:
        write_json_atomic(output, result)
        typer.echo(f"wrote {output}")
