"""`foley eval`: metrics reports, paired comparisons and the attribute control test."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from ..errors import FoleyError
from . import app
from .options import with_threads

eval_app = typer.Typer(
    help="Evaluate generated audio: `foley eval --generated G --reference R -o report/`, "
         "`foley eval compare A B --reference R`, `foley eval control --model NAME`.",
    invoke_without_command=True)
app.add_typer(eval_app, name="eval")

METRICS_HELP = ("Metrics (repeat or comma-separate; default all): fd_logmel, kid_logmel, fd_inf_logmel, "
                "knn_logmel, lsd, mel_distance, si_sdr, chroma_cosine, loudness_diff, sanity, diversity, "
                "attributes, clap (foley-clap score of each sound vs its prompt), and fd_/kid_/kl_/is_ + a "
                "backbone name.")


def _settings(sample_rate, normalise, clip_seconds, duration, seed, subset_size, subsets, bootstrap,
              cache_dir, no_cache):
    from ..eval.cache import default_dir
    from ..eval.prepare import NORMALISATIONS, EvalSettings

    if normalise not in NORMALISATIONS:
        raise FoleyError(f"--normalise must be one of {', '.join(NORMALISATIONS)}, got '{normalise}'")
    for name, v in (("--clip-seconds", clip_seconds), ("--duration", duration)):
        if v is not None and not v > 0:
            raise FoleyError(f"{name} must be a positive number of seconds, got {v}")
    if subsets < 2 or bootstrap < 100:
        raise FoleyError("--subsets must be at least 2 and --bootstrap at least 100")
    return EvalSettings(sample_rate=sample_rate, normalisation=normalise, clip_seconds=clip_seconds,
                        expected_duration=duration, seed=seed, subset_size=subset_size, n_subsets=subsets,
                        n_bootstrap=bootstrap, cache_dir=None if no_cache else (cache_dir or default_dir()))


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


def _print_summary(report: dict) -> None:
    missing: dict[str, list[str]] = {}
    notes: list[str] = []
    for name, m in report["metrics"].items():
        if m.get("status") != "ok":
            missing.setdefault(m.get("reason", ""), []).append(name)
        elif "value" in m:
            sub = m.get("subsets")
            extra = f"  (subsets {sub['mean']:.4g} ± {sub['sd']:.3g})" if sub and "mean" in sub else ""
            if m.get("note"):
                extra += "  *" if m["value"] < 0 else ""
                notes += [] if m["note"] in notes else [m["note"]]
            typer.echo(f"  {name:16s} {m['value']:.4g}{extra}")
        elif "precision" in m:
            typer.echo(f"  {name:16s} precision {m['precision']:.3f}  recall {m['recall']:.3f}")
        elif m.get("mean") is not None:
            ci = m.get("ci95")
            ci_s = f"  [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            typer.echo(f"  {name:16s} {m['mean']:.4g}{ci_s}")
        elif "within" in m:
            typer.echo(f"  {name:16s} within-prompt {m['within']:.3g} / overall {m['overall']:.3g}")
    for reason, names in missing.items():
        typer.echo(f"  unavailable: {', '.join(names)} ({reason})")
    for note in notes:
        typer.echo(f"  * {note}")


@eval_app.command("run")
@with_threads
def eval_run(
    generated: str = typer.Option(None, "--generated", "-g", help="Folder or JSONL manifest of generated audio."),
    reference: str = typer.Option(None, "--reference", "-r", help="Folder or JSONL manifest of reference audio."),
    metrics: list[str] = typer.Option(None, "--metrics", "-m", help=METRICS_HELP),
    out: Path = typer.Option(Path("report"), "--output", "-o", help="Report folder (report.json, report.html)."),
    sample_rate: int = typer.Option(16_000, "--sample-rate", help="Rate for paired metrics (Hz)."),
    normalise: str = typer.Option("none", "--normalise", help="none or loudness (EBU R128, -23 LUFS)."),
    clip_seconds: float = typer.Option(None, "--clip-seconds", help="Crop to the first N s / zero-pad."),
    duration: float = typer.Option(None, "--duration", help="Expected duration (s) for compliance checks."),
    seed: int = typer.Option(0, "--seed", help="Seed for subsets and bootstrap."),
    subset_size: int = typer.Option(None, "--subset-size", help="Items per subset (default: half the smaller set)."),
    subsets: int = typer.Option(10, "--subsets", help="Number of subsets for set-metric mean ± sd."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for 95 % CIs."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Feature cache (default $FOLEY_HOME/cache/eval)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute every feature afresh."),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write report.html."),
    ray: str = typer.Option(None, "--ray", metavar="[ADDRESS]", help="Extract features on Ray actors: --ray alone "
                            "starts a local instance, --ray auto or --ray HOST:6379 joins one (pip install "
                            "'ray>=2.40,<3', the foley ray extra)."),
    actors: int = typer.Option(None, "--actors", help="With --ray: how many actors (default: the cluster's CPUs "
                               "/ --actor-cpus)."),
    actor_cpus: int = typer.Option(1, "--actor-cpus", help="With --ray: CPUs (and torch threads) per actor."),
):
    """Compare generated audio with reference audio (tier 1 needs no weights; backbones when present)."""
    if not generated or not reference:
        raise FoleyError("foley eval needs --generated and --reference (folders or JSONL manifests); "
                         "see foley eval --help")
    if ray is None and (actors is not None or actor_cpus != 1):
        raise FoleyError("--actors and --actor-cpus go with --ray")
    if actors is not None and actors < 1 or actor_cpus < 1:
        raise FoleyError("--actors and --actor-cpus must be at least 1")
    from ..eval.run import evaluate, write_report

    s = _settings(sample_rate, normalise, clip_seconds, duration, seed, subset_size, subsets, bootstrap,
                  cache_dir, no_cache)
    remote = None
    if ray is not None:
        from ..eval.remote import RayFeatures

        remote = RayFeatures(None if ray == "local" else ray, actors, actor_cpus)
    try:
        result = evaluate(generated, reference, metrics, s, log=_log, remote=remote)
    finally:
        if remote is not None:
            remote.close()
    paths = write_report(result, out, html=html)
    _print_summary(result.report)
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


def _default(ctx: typer.Context, **options):
    """`foley eval --generated ... --reference ...` runs `foley eval run` (the callback shares its options)."""
    if ctx.invoked_subcommand is not None:
        return
    if options["generated"] is None and options["reference"] is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    eval_run(**options)


# The callback takes exactly eval_run's options (plus the context), so both spellings work.
_sig = inspect.signature(eval_run)
_default.__signature__ = _sig.replace(parameters=[
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="typer.Context"),
    *_sig.parameters.values()])
_default.__annotations__ = {"ctx": "typer.Context", **eval_run.__annotations__}
_default.__doc__ = eval_run.__doc__
eval_app.callback(invoke_without_command=True)(_default)


@eval_app.command("compare")
@with_threads
def eval_compare(
    a: str = typer.Argument(..., help="Generated set A (folder or manifest)."),
    b: str = typer.Argument(..., help="Generated set B (folder or manifest)."),
    reference: str = typer.Option(..., "--reference", "-r", help="Reference folder or manifest."),
    metrics: list[str] = typer.Option(None, "--metrics", "-m", help=METRICS_HELP),
    out: Path = typer.Option(Path("compare"), "--output", "-o", help="Folder for compare.json and compare.html."),
    sample_rate: int = typer.Option(16_000, "--sample-rate", help="Rate for paired metrics (Hz)."),
    seed: int = typer.Option(0, "--seed", help="Seed for subsets and bootstrap."),
    subsets: int = typer.Option(10, "--subsets", help="Subsets for set metrics (at least 50 draws for diffs)."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for 95 % CIs."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute every feature afresh."),
):
    """Report A - B for every metric with a 95 % interval (paired by reference item where possible)."""
    from ..eval.compare import compare, render_compare
    from ..eval.run import _jsonable
    from ..fsutil import write_json_atomic, write_text_atomic

    s = _settings(sample_rate, "none", None, None, seed, None, subsets, bootstrap, None, no_cache)
    res = compare(a, b, reference, metrics, s, log=_log)
    write_json_atomic(out / "compare.json", _jsonable(res))
    write_text_atomic(out / "compare.html", render_compare(res))
    for name, r in res["metrics"].items():
        if r["status"] != "ok":
            typer.echo(f"  {name:16s} unavailable: {r.get('reason', '')}")
            continue
        if "difference" not in r:
            continue
        sub = r.get("subsets", {})
        if r.get("ci95"):
            unc = f"[{r['ci95'][0]:+.4g}, {r['ci95'][1]:+.4g}]" + (" paired" if r.get("paired") else "")
        elif "interval95" in sub:
            unc = f"[{sub['interval95'][0]:+.4g}, {sub['interval95'][1]:+.4g}] over subsets"
        else:
            unc = f"(no interval: {sub.get('reason', 'too few items')})"
        typer.echo(f"  {name:16s} A-B {r['difference']:+.4g}  {unc}")
    typer.echo(f"wrote {out / 'compare.json'}, {out / 'compare.html'}")


@eval_app.command("control")
@with_threads
def eval_control(
    model: str = typer.Option("starter", "--model", help="Model name or folder."),
    oracle: bool = typer.Option(False, "--oracle", help="Render the pairs' own synth specs instead of a model "
                                "(the corpus ceiling; checks the analyzers on real renders)."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per prompt pair (0..N-1)."),
    duration: float = typer.Option(4.0, "--duration", help="Seconds per generated clip."),
    out: Path = typer.Option(Path("control"), "--output", "-o", help="Folder for control.json/.md/.html."),
    guidance: float = typer.Option(None, "--guidance", "-g", help="Guidance scale (model default if unset)."),
    steps: int = typer.Option(None, "--steps", help="Denoising steps (model default if unset)."),
    best_of: int = typer.Option(1, "--best-of", help="Rerank N candidates per sound (foley-clap + the analyzers of "
                                "the attributes the prompt names), as `foley generate --best-of`."),
    backend: str = typer.Option("torch", "--backend", help="torch or onnx: as `foley generate --backend`."),
    quantize: str = typer.Option(None, "--quantize", help="int8: as `foley generate --quantize`."),
    no_prior: bool = typer.Option(False, "--no-prior", help="As `foley generate --no-prior`: the prompts' shape "
                                  "words make no target curves (text alone)."),
    no_control_adapter: bool = typer.Option(False, "--no-control-adapter", help="As `foley generate "
                                            "--no-control-adapter`."),
    steer: int = typer.Option(0, "--steer", help="As `foley generate --steer N`: N steering iterations towards "
                              "the curves the prior makes of a prompt's shape words (prompts without any: "
                              "unsteered)."),
    attributes: list[str] = typer.Option(None, "--attribute", help="Only this attribute's pairs (repeatable; "
                                         "default: all), e.g. --attribute texture --attribute tremolo."),
):
    """Minimal-pair control test: per attribute, the share of prompt pairs that move the right way and the AUC."""
    from ..data.synth.control import minimal_pairs
    from ..eval.control import OracleGenerator, control_markdown, control_test, write_control

    if seeds < 1 or not duration > 0:
        raise FoleyError("--seeds must be at least 1 and --duration positive")
    pairs = minimal_pairs()
    if attributes:
        known = sorted({p.attribute for p in pairs})
        unknown = [a for a in attributes if a not in known]
        if unknown:
            raise FoleyError(f"unknown attribute {', '.join(unknown)}; choose from {', '.join(known)}")
        pairs = [p for p in pairs if p.attribute in attributes]
    if oracle:
        gen = OracleGenerator(pairs)
    else:
        import foley

        options = {k: v for k, v in (("backend", backend), ("quantize", quantize)) if v not in (None, "torch")}
        gen = foley.load(model, **options)
    settings = {k: v for k, v in (("guidance_scale", guidance), ("steps", steps)) if v is not None}
    if best_of != 1:
        settings["best_of"] = best_of
    if no_prior:
        settings["prior"] = False
    if no_control_adapter:
        settings["control_adapter"] = False
    if steer:
        if steer < 0 or no_prior:
            raise FoleyError("--steer steers towards the prior's curves: give a positive N and drop --no-prior")
        settings["steer"] = steer
    res = control_test(gen, pairs, seeds, duration, log=_log, **settings)
    res["generation_settings"] = settings
    if attributes:
        res["settings"]["attributes"] = sorted(set(attributes))
    res["model"] = {"name": gen.card.name, "family": gen.card.family, "weight_hash": gen.weight_hash(),
                    **({"runtime": rt} if (rt := gen.runtime()) else {})}
    paths = write_control(res, out)
    typer.echo(control_markdown(res))
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
