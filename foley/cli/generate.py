"""`foley generate` and `foley edit`: every request is validated before a model loads or a file is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from ..errors import RequestError
from . import app
from .options import step_progress, with_threads

FORMATS = ("wav", "flac", "ogg")
DEVICE_HELP = "Where the model runs: auto (default; FOLEY_DEVICE), cpu, cuda, cuda:1 or mps."
VOCODERS = ("auto", "griffin-lim")


def _slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:n] or "sound"


def _outputs(out: Path | None, fmt: str | None, prompts: list[str], variations: int) -> list[Path]:
    """One path per (prompt, variation); numbered when there are several."""
    total = len(prompts) * variations
    if out is None:
        base = Path("out")
        tag = [f"_{j + 1}" if variations > 1 else "" for j in range(variations)]
        paths = [base / (_slug(p) + tag[j]) for p in prompts for j in range(variations)]
        return [p.with_suffix(f".{fmt or 'wav'}") for p in paths]
    suffix = out.suffix.lstrip(".").lower()
    if suffix and suffix not in FORMATS:
        raise RequestError(f"{out}: cannot write '.{suffix}' files; use .wav, .flac or .ogg (or --format)")
    ext = fmt or suffix or "wav"
    if total == 1:
        return [out.with_suffix(f".{ext}")]
    stem = out.with_suffix("")
    return [stem.parent / f"{stem.name}_{i + 1:03d}.{ext}" for i in range(total)]


def _write(audio, path: Path, plot: bool) -> None:
    from ..fsutil import write_json_atomic

    audio.save(path)
    write_json_atomic(path.with_suffix(".json"), {"file": path.name, **audio.meta})
    if plot:
        from ..plot import save_spectrogram

        save_spectrogram(audio, path.with_suffix(".png"), title=audio.meta.get("request", {}).get("prompt", ""))


def _done(path: Path, request: dict, variation: int) -> bool:
    """A batch item is finished when its audio and a sidecar with the same request exist (fields left unset
    match the model defaults the sidecar filled in, listed in its ``defaults_used``)."""
    side = path.with_suffix(".json")
    if not (path.exists() and side.exists()):
        return False
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    saved, filled = meta.get("request"), set(meta.get("defaults_used") or ())
    if not isinstance(saved, dict) or set(saved) != set(request):
        return False
    same = all(saved[k] == v or (v is None and k in filled) for k, v in request.items())
    return same and meta.get("variation") == variation


@app.command()
@with_threads
def generate(
    prompt: str = typer.Argument(None, help="What the sound should be, e.g. 'footsteps on gravel'."),
    duration: float = typer.Option(None, "--duration", "-d", help="Seconds of audio (default 5, or the model's "
                                   "maximum when shorter)."),
    output: Path = typer.Option(None, "--output", "-o", help="Output file (numbered when several)."),
    model: str = typer.Option("starter", "--model", "-m", help="Model name or folder (foley models list)."),
    lora: list[str] = typer.Option([], "--lora", help="A LoRA adapter folder (foley train finetune --lora) merged "
                                   "into the model; repeat to mix several."),
    lora_scale: list[float] = typer.Option([], "--lora-scale", help="Strength of each --lora, in order (default 1)."),
    seed: int = typer.Option(None, "--seed", help="Random seed; same request + seed = same sound."),
    steps: int = typer.Option(None, "--steps", help="Denoising steps (model default if unset)."),
    guidance: float = typer.Option(None, "--guidance", "-g", help="Classifier-free guidance scale."),
    negative: str = typer.Option(None, "--negative", help="Negative prompt: what to avoid."),
    scheduler: str = typer.Option(None, "--scheduler", help="ddim, dpm++, dpm++sde, unipc, euler, heun, pndm."),
    variations: int = typer.Option(1, "--variations", "-n", help="Sounds per prompt."),
    best_of: int = typer.Option(1, "--best-of", help="Draw N candidates per sound in one batch and keep the one "
                                "foley-clap scores closest to the words (the sidecar lists all N)."),
    batch_file: Path = typer.Option(None, "--batch-file", help="Text file, one prompt per line."),
    fmt: str = typer.Option(None, "--format", help="wav, flac or ogg."),
    plot: bool = typer.Option(False, "--plot", help="Write a spectrogram PNG beside each sound."),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
    vocoder: str = typer.Option("auto", "--vocoder", help="auto (the model's) or griffin-lim."),
    stream_: bool = typer.Option(False, "--stream", help="Token-LM models (-m starter-lm): write the .wav chunk "
                                 "by chunk while it is sampled, or with -o - play raw PCM through stdout "
                                 "(as `foley stream`)."),
    control: list[str] = typer.Option(None, "--control", help="A target curve NAME=SOURCE (repeatable): "
                                      "loudness, brightness, pitch, density or pan from a sound (pitch=ref.wav), "
                                      "a curve file (.csv time,value or .json) or words ('pitch=rise 200Hz->800Hz', "
                                      "'loudness=fade out', 'pan=left->right'); or a whole-sound quality, "
                                      "steered: texture=noisy|tonal, tremolo=on|none. docs/control.md."),
    control_strength: list[str] = typer.Option(None, "--control-strength", help="NAME=VALUE: weight of one "
                                               "curve when steering (default 1, 0..10; repeatable)."),
    steer: int = typer.Option(None, "--steer", help="Steering iterations towards the curves (default 10 with "
                              "--control or --like; 0 = measure only); also towards the prompt's shape words "
                              "('rising', 'from left to right') and qualities ('noisy', 'pure-toned', "
                              "'with tremolo')."),
    like: Path = typer.Option(None, "--like", help="A vocal or tapped imitation: its five curves become the "
                              "targets."),
    no_prior: bool = typer.Option(False, "--no-prior", help="Do not turn the prompt's words ('rising', 'fading "
                                  "out', 'from left to right') into target curves (they drive the model's control "
                                  "adapter, and steering)."),
    no_control_adapter: bool = typer.Option(False, "--no-control-adapter", help="Do not use the model's control "
                                            "adapter (its control/ folder, foley train control): curves are then "
                                            "followed by steering only, where the model steers."),
    interpolate: tuple[str, str] = typer.Option(None, "--interpolate", help="A B: -n sounds from A to B, both "
                                                "ends included; each end a prompt (at --seed) or a seed of the "
                                                "prompt (--interpolate 3 17). Models that interpolate only."),
    quantize: str = typer.Option(None, "--quantize", help="int8: dynamic int8 Linear layers of the UNet and VAE "
                                 "decoder (latent diffusion), or of the decoder step with --backend onnx (token "
                                 "models); docs/benchmarks.md has speed and quality."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: the UNet (latent diffusion), the "
                                "decoder step (token models) or the whole generator without torch (WaveGAN: a "
                                "one-shot in under a second from a cold start) in onnxruntime, exported once into "
                                "the cache or from --onnx-dir; pip install 'foley[onnx]'. A token model draws other "
                                "codes for a seed."),
    onnx_dir: Path = typer.Option(None, "--onnx-dir", help="A folder written by `foley export onnx`."),
    ray: str = typer.Option(None, "--ray", metavar="[ADDRESS]",
                            help="Fan the batch out over a Ray cluster: --ray alone (or --ray local) starts a local "
                            "instance, --ray auto or --ray HOST:6379 joins one (pip install 'ray>=2.40,<3', the foley "
                            "ray extra). One model load per actor; each sound is written here as it finishes."),
    actors: int = typer.Option(None, "--actors", help="With --ray: how many actors (default: the cluster's CPUs "
                               "/ --actor-cpus)."),
    actor_cpus: int = typer.Option(1, "--actor-cpus", help="With --ray: CPUs (and torch threads) per actor."),
):
    """Generate sounds from text. Writes audio plus a sidecar JSON with every parameter and the seed."""
    from ..request import make_request

    model = _with_lora(model, lora, lora_scale)
    if ray is None and (actors is not None or actor_cpus != 1):
        raise RequestError("--actors and --actor-cpus go with --ray")
    if actors is not None and actors < 1 or actor_cpus < 1:
        raise RequestError("--actors and --actor-cpus must be at least 1")
    if ray is not None:
        from ..raycluster import require

        require()  # installed? (before anything loads or is written)
    if stream_:
        if ray is not None:
            raise RequestError("--stream makes one sound in this process; drop --ray")
        if batch_file is not None or variations != 1 or steps is not None or scheduler is not None or plot \
                or best_of != 1:
            raise RequestError("--stream makes one sound from one prompt: drop --batch-file, --variations, "
                               "--best-of, --steps, --scheduler and --plot")
        if output is None:
            raise RequestError("--stream needs -o out.wav (or -o - for raw 16-bit PCM on stdout)")
        if vocoder != "auto":
            raise RequestError("--stream uses the token LM's codec; drop --vocoder")
        from .codec import stream as _stream

        return _stream(prompt=_prompts(prompt, None)[0], output=output, model=model,
                       duration=_default_duration(model) if duration is None else duration, seed=seed,
                       guidance=guidance, negative=negative, top_k=None, top_p=None, temperature=None)
    if fmt is not None and fmt not in FORMATS:
        raise RequestError(f"unknown format '{fmt}'; use wav, flac or ogg")
    _check_vocoder(vocoder)
    ends = _interpolation(prompt, interpolate, seed, batch_file) if interpolate else None
    prompts = [ends["prompt"]] if ends else _prompts(prompt, batch_file)
    curves = {"controls": control or None, "control_strength": control_strength or None, "steer": steer,
              "like": None if like is None else str(like), "prior": not no_prior,
              "control_adapter": not no_control_adapter}
    if duration is None:
        duration = _default_duration(model)
    requests = [make_request(prompt=p, duration=duration, steps=steps, guidance_scale=guidance,
                             negative_prompt=negative, scheduler=scheduler, num_variations=variations,
                             best_of=best_of, **curves,
                             **({k: ends[k] for k in ("seed", "interpolate")} if ends else {"seed": seed}))
                for p in prompts]
    if best_of > 1:
        _check_clap()
    from ..registry import check_request

    check_request(model, requests[0])  # settings, task and duration against the model, before it loads
    names = [f"{r.prompt} to {r.interpolate.prompt or r.prompt}" if r.interpolate else r.prompt for r in requests]
    paths = _outputs(output, fmt, names, variations)
    todo = [(r, j) for r in requests for j in range(variations)]
    pending = [i for i, (r, j) in enumerate(todo) if not (batch_file and _done(paths[i], r.model_dump(), j))]
    if not pending:
        typer.echo("all outputs already exist; nothing to do")
        return
    _check_outputs(paths[i] for i in pending)
    options = {"vocoder": vocoder} if vocoder != "auto" else {}
    options.update({k: v for k, v in (("quantize", quantize), ("onnx_dir", onnx_dir)) if v is not None})
    options.update({"backend": backend} if backend != "torch" or onnx_dir else {})
    options.update({"device": device} if device else {})
    wanted = sorted({id(todo[i][0]): todo[i][0] for i in pending}.values(), key=requests.index)
    slot = {(id(todo[i][0]), todo[i][1]): i for i in pending}  # (request, variation) -> output still to write

    def save(r, audios, echo=typer.echo) -> int:
        """Write the outputs of request ``r`` that are still to do; returns how many."""
        written = 0
        for j, audio in enumerate(audios):
            i = slot.get((id(r), j))
            if i is not None:
                _write(audio, paths[i], plot)
                echo(f"wrote {paths[i]}  (seed {audio.meta['seed']}){_adherence(audio)}{_inaudible(audio)}")
                written += 1
        return written

    if ray is not None:
        return _generate_on_ray(ray, model, options, wanted, save, total=len(todo), done=len(todo) - len(pending),
                                actors=actors, actor_cpus=actor_cpus)
    from .. import load

    gen = load(model, **options)
    with step_progress(gen, "generating"):
        audios = gen.generate(wanted)
    k = 0
    for r in wanted:
        save(r, audios[k:k + r.num_variations])
        k += r.num_variations


def _generate_on_ray(address: str, model: str, options: dict, wanted: list, save, total: int, done: int,
                     actors: int | None, actor_cpus: int) -> None:
    """The batch on Ray (foley/cli/ray_batch.py): one progress bar over every output of the batch (those
    already on disk counted as done), each request's sounds written as its actor returns them."""
    from tqdm import tqdm

    from . import ray_batch

    bars = []  # made once the actors are ready, so connection and load errors print alone

    def ready(where):
        bars.append(tqdm(total=total, initial=done, desc=f"generating (ray, {len(where)} actors)", unit="sound",
                         dynamic_ncols=True))

    try:
        used = ray_batch.run(None if address == "local" else address, model, options, wanted,
                             lambda i, audios: bars[0].update(save(wanted[i], audios, echo=bars[0].write)),
                             actors=actors, actor_cpus=actor_cpus, on_ready=ready)
    finally:
        for bar in bars:
            bar.close()
    typer.echo(f"{total - done} sound(s) from {len(wanted)} request(s) on {used} Ray actor(s)")


def _adherence(audio) -> str:
    """"; curves: pitch r=0.93, ..." when the sound was steered towards (or measured against) control curves."""
    control = audio.meta.get("control") or {}
    adh = control.get("adherence") or {}
    parts = [f"{n} r={d['correlation']:.2f}" if d.get("correlation") is not None else
             f"{n} error {d['mean_error']:g} {d['unit']}" for n, d in adh.items() if d.get("mean_error") is not None]
    parts += [f"{d['quality']} {'met' if d['met'] else 'missed'}" for d in (control.get("qualities") or {}).values()]
    return f"; curves: {', '.join(parts)}" if parts else ""


def _inaudible(audio) -> str:
    """A note when the output stayed inaudible after the generator's redraws (the sidecar's ``redrawn.silent``)."""
    red = audio.meta.get("redrawn") or {}
    if not red.get("silent"):
        return ""
    return (f"; inaudible ({audio.rms_db():.0f} dBFS) after {red.get('tries')} redraws: try another --seed, or "
            "name the sound's level in the prompt")


def _check_outputs(paths) -> None:
    """Every output (and its sidecar) can be written: checked before a model loads, not after generating."""
    from ..fsutil import check_writable

    folders = set()
    for p in paths:
        if p.is_dir() or p.parent not in folders:
            check_writable(p)
            folders.add(p.parent)


def _check_clap() -> None:
    """Best-of-N needs foley-clap: say so before any model loads."""
    from ..clap import clap_dir

    folder = clap_dir()
    if not (folder / "model.safetensors").is_file():
        raise RequestError(f"--best-of ranks candidates with foley-clap, not found in {folder}; set FOLEY_CLAP to "
                           "a foley-clap folder or drop --best-of")


def _check_vocoder(name: str) -> None:
    if name not in VOCODERS:
        raise RequestError(f"unknown vocoder '{name}'; choose one of {', '.join(VOCODERS)}")




def _with_lora(model: str, lora: list[str], scales: list[float]) -> str:
    """``-m starter --lora A --lora-scale 0.8 --lora B`` -> ``starter+A@0.8+B`` (the adapters' name form)."""
    if not lora and not scales:
        return model
    if len(scales) > len(lora):
        raise RequestError(f"{len(scales)} --lora-scale value(s) for {len(lora)} --lora adapter(s)")
    from ..adapters import join_spec, locate

    return join_spec(model, [(str(locate(a)), scales[i] if i < len(scales) else 1.0) for i, a in enumerate(lora)])


def _default_duration(model: str) -> float:
    """5 s, or the model's maximum when it is shorter (one-shot models)."""
    from ..errors import FoleyError
    from ..registry import describe

    try:
        _, caps = describe(model)
    except FoleyError:  # an unknown or missing model: said in one line when the request is checked
        return 5.0
    top = caps.max_duration if caps is not None else None
    return min(5.0, top) if top else 5.0


def _interpolation(prompt: str | None, ends: tuple[str, str], seed: int | None, batch_file) -> dict:
    """``--interpolate A B`` as request fields: each end is a prompt (at --seed) or, when all digits, a seed of
    the positional prompt; the second end becomes ``interpolate`` (None where it equals the first)."""
    if batch_file is not None:
        raise RequestError("--interpolate makes one series from two ends; drop --batch-file")
    parsed = []
    for end in ends:
        end = end.strip()
        if end.isdigit():
            if not prompt:
                raise RequestError(f"--interpolate {ends[0]} {ends[1]}: seeds interpolate a prompt; give it, e.g. "
                                   f"foley generate \"a metal impact\" --interpolate 3 17 -n 8")
            parsed.append((prompt, int(end)))
        else:
            parsed.append((end, seed))
    if prompt and not any(e.strip().isdigit() for e in ends):
        raise RequestError("give either a prompt or two prompts to --interpolate, not both")
    (pa, sa), (pb, sb) = parsed
    return {"prompt": pa, "seed": sa,
            "interpolate": {"prompt": None if pb == pa else pb, "seed": None if sb == sa else sb}}


def _prompts(prompt: str | None, batch_file: Path | None) -> list[str]:
    if batch_file is not None:
        if prompt:
            raise RequestError("give either a prompt or --batch-file, not both")
        if not batch_file.exists():
            raise RequestError(f"{batch_file}: batch file not found")
        if not batch_file.is_file():
            raise RequestError(f"{batch_file}: not a file; give a text file with one prompt per line")
        try:
            lines = [ln.strip() for ln in batch_file.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as e:
            raise RequestError(f"{batch_file}: not a UTF-8 text file (byte {e.start} is not text); give one "
                               "prompt per line") from None
        except OSError as e:
            raise RequestError(f"{batch_file}: cannot read the batch file ({e.strerror or e})") from None
        prompts = [ln for ln in lines if ln and not ln.startswith("#")]
        if not prompts:
            raise RequestError(f"{batch_file}: no prompts (one per line, # for comments)")
        return prompts
    if prompt is None:
        raise RequestError("no prompt given: foley generate \"rain on a tin roof\" -d 5 -o rain.wav")
    return [prompt]


@app.command()
@with_threads
def edit(
    input: Path = typer.Argument(..., help="Audio to edit."),
    prompt: str = typer.Argument(None, help="What the result should sound like."),
    task: str = typer.Option("style_transfer", "--task", "-t",
                             help="style_transfer, inpaint, extend, continue, super_resolution, variation, loop or "
                                  "melody (a new sound following the input's melody: MusicGen-melody, or a token "
                                  "model with a control adapter) (what a model can do: foley models info NAME)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file."),
    strength: float = typer.Option(None, "--strength", help="Style transfer, variation: 0 keeps the input, 1 "
                                   "ignores it (variation: the share of tokens re-drawn)."),
    period: float = typer.Option(None, "--period", help="Loop: seconds between the input's kept frames (a beat: "
                                 "60/BPM); the rest is regenerated."),
    start: float = typer.Option(None, "--start", help="Inpaint: start of the range to replace (s)."),
    end: float = typer.Option(None, "--end", help="Inpaint: end of the range to replace (s)."),
    cutoff: float = typer.Option(None, "--cutoff", help="Super-resolution: the input's band limit (Hz)."),
    duration: float = typer.Option(None, "--duration", "-d", help="Extend/continue: total length (s)."),
    model: str = typer.Option("starter", "--model", "-m"),
    seed: int = typer.Option(None, "--seed"),
    steps: int = typer.Option(None, "--steps"),
    guidance: float = typer.Option(None, "--guidance", "-g"),
    negative: str = typer.Option(None, "--negative"),
    scheduler: str = typer.Option(None, "--scheduler"),
    plot: bool = typer.Option(False, "--plot"),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
):
    """Zero-shot editing: style transfer, inpainting, extension, super-resolution, variations and loops."""
    from ..audio import Audio, info
    from ..generator import check_edit
    from ..request import make_request

    suffix = output.suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise RequestError(f"{output}: cannot write '.{suffix or '(none)'}' files; use .wav, .flac or .ogg")
    meta = info(input)  # fails fast on a missing or unreadable file
    if prompt is None:
        if task != "super_resolution":
            raise RequestError(f"task '{task}' needs a prompt describing the result")
        prompt = "clear, detailed, full-band sound"
    req = make_request(prompt=prompt, task=task, duration=meta["duration"] if duration is None else duration,
                       seed=seed, steps=steps, guidance_scale=guidance, negative_prompt=negative, scheduler=scheduler,
                       strength=strength, mask_start=start, mask_end=end, cutoff_hz=cutoff, period=period)
    audio = Audio.load(input)
    req = check_edit(audio, req)  # before a model loads: too short, NaN, cut-off, extend length
    from ..registry import check_request

    check_request(model, req)  # task, settings and duration against the model
    _check_outputs([output])
    from .. import load

    gen = load(model, **({"device": device} if device else {}))
    with step_progress(gen, "editing"):
        result = gen.edit(audio, req)[0]
    result.meta["input"] = str(input)
    _write(result, output, plot)
    typer.echo(f"wrote {output}  (seed {result.meta['seed']})")
