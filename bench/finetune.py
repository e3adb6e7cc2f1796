"""Fine-tuning measured (issue 17): base vs LoRA vs full on a demonstration set the starter never heard.

    python bench/finetune.py build -o corpora/gm-sfx --minutes 60          # the demonstration set (fluidsynth)
    python bench/finetune.py run --data corpora/gm-sfx --base starter --budget 20 \
        --general corpora/synth/manifest.jsonl -o runs/finetune-bench
    python bench/finetune.py speed --base starter --adapter runs/finetune-bench/model-lora   # with vs without

``build`` renders General-MIDI programs that the music corpus (foley/data/music/instruments.py) never uses — the
GM "sound effects" and ethnic/FX banks (seashore, bird tweet, telephone ring, helicopter, applause, gunshot,
breath noise, fret noise, reverse cymbal, taiko, woodblock, agogo, koto, bagpipe, goblins, sci-fi ...) — as short
phrases of random notes, ``--minutes`` of 4 s clips, one description per program (16 distinct descriptions, as
the thesis's 22 food sounds), written as a folder of wavs + manifest.jsonl.

``run`` (the lead's measurement; on 2 idle cores about 2 x budget + 25 min for the evaluations):
1. fine-tunes ``--base`` twice on the set (``foley train finetune``: LoRA rank 8, then full), each within
   ``--budget`` minutes, with the same held-out split (10 %, held out by the fine-tuning itself);
2. time to the first measurable gain: the first validation whose held-out loss is 2 % under the first one
   (steps and minutes from the run's log), and to the best (convergence);
3. for base, LoRA and full: one sound per held-out clip from its description, then held-out FD
   (``foley eval``: log-mel and foley-encoder Fréchet distances to the held-out clips) and foley-clap top-1 among
   the set's descriptions (``FoleyClap.similarity``);
4. forgetting: FD to ``--general`` held-out clips (the deterministic validation split, as bench/heldout_eval.py)
   and ``foley eval control`` for each model (goal: within 10 % of the base). ``--replay F`` (and
   ``--replay-data``) pass through to both fine-tunes (``foley train finetune --replay``: that share of every batch
   from the base's own corpora, whose held-out clips, the ones measured here, are never replayed); unset, the
   fine-tune's default applies (0.25 when the base's corpora are on disk); ``--replay 0`` is the run before replay;
5. adapter size (goal <= 2 MB at rank 8). Results: ``<out>/results.json`` and ``results.md``.

Generation speed with an adapter is unchanged by construction (adapters are merged into the weights at load:
the UNet/decoder is the plain network again); ``--speed`` times 3 generations each to show it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# General-MIDI programs the music corpus never renders, with the description of the demonstration set
PROGRAMS = {
    122: "waves breaking on a seashore", 123: "birds tweeting", 124: "an old telephone ringing",
    125: "a helicopter passing", 126: "a crowd applauding", 127: "gunshots", 121: "breathy noise bursts",
    120: "guitar fret squeaks", 119: "a reversed cymbal swell", 116: "taiko drum hits", 115: "woodblock knocks",
    113: "agogo bell hits", 107: "koto plucks", 109: "a bagpipe drone", 101: "eerie goblin synth voices",
    103: "sci-fi synth effects",
}


def build(out: Path, minutes: float, seconds: float, seed: int) -> Path:
    """Render the demonstration set: phrases of 2-6 notes per clip of one GM program, stereo 16 kHz."""
    import numpy as np

    from foley.audio import Audio
    from foley.data.manifest import write_manifest
    from foley.data.music.render import find_fluidsynth, find_soundfont, require_mido

    mido, exe, sf2 = require_mido(), find_fluidsynth(), find_soundfont(None)
    n = int(round(minutes * 60 / seconds))
    rng = np.random.default_rng(seed)
    rows, progs = [], list(PROGRAMS)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        prog = progs[i % len(progs)]
        path = out / f"{prog:03d}_{i:05d}.wav"
        if not path.exists():
            mid = mido.MidiFile(ticks_per_beat=480)
            tr = mido.MidiTrack()
            mid.tracks.append(tr)
            tr.append(mido.Message("program_change", program=prog, channel=0, time=0))
            tr.append(mido.Message("control_change", control=10, value=int(rng.integers(24, 104)), channel=0))
            k = int(rng.integers(2, 7))
            beat = seconds * 2 / (k + 1)  # 120 bpm: 2 beats per second
            for _ in range(k):
                note, vel = int(rng.integers(40, 84)), int(rng.integers(60, 120))
                on = int(480 * beat * rng.uniform(0.3, 0.9))
                tr.append(mido.Message("note_on", note=note, velocity=vel, channel=0, time=int(rng.integers(0, 120))))
                tr.append(mido.Message("note_off", note=note, velocity=0, channel=0, time=on))
            tmp_mid, tmp_wav = out / f".{i}.mid", out / f".{i}.wav"
            mid.save(str(tmp_mid))
            subprocess.run([exe, "-ni", "-q", "-F", str(tmp_wav), "-T", "wav", "-O", "float", "-r", "16000",
                            "-g", "0.6", str(sf2), str(tmp_mid)], check=True, capture_output=True,
                           stdin=subprocess.DEVNULL)
            a = Audio.load(tmp_wav).to_stereo().pad_or_trim(int(seconds * 16000)).normalize_loudness(-20.0)
            a.save(path)
            tmp_mid.unlink()
            tmp_wav.unlink()
        rows.append({"path": path.name, "duration": seconds, "sample_rate": 16000, "channels": 2,
                     "description": PROGRAMS[prog], "keywords": [f"gm{prog}"]})
    return write_manifest(out / "manifest.jsonl", rows)


def _report_fd(report: Path) -> dict:
    """The Fréchet distances of a `foley eval` report (every key starting with fd_)."""
    data = json.loads((report / "report.json").read_text())
    found = {}

    def walk(d):
        if isinstance(d, dict):
            for k, v in d.items():
                if k.startswith("fd_") and isinstance(v, (int, float)):
                    found[k] = v
                elif k.startswith("fd_") and isinstance(v, dict) and isinstance(v.get("value"), (int, float)):
                    found[k] = v["value"]
                else:
                    walk(v)

    walk(data)
    return found


def _generate_and_fd(model: str, clips, out: Path, duration: float, seed0: int = 0) -> tuple[dict, list]:
    import foley
    from foley.data.manifest import write_manifest

    gen = foley.load(model)
    rows, ref, audios = [], [], []
    for i, c in enumerate(clips):
        a = gen.generate(c.description, duration=duration, seed=seed0 + i)[0]
        audios.append(a)
        rows.append({"id": f"{i:04d}", "path": a.save(out / "generated" / f"{i:04d}.wav").name,
                     "duration": a.duration, "sample_rate": a.sample_rate, "description": c.description})
        ref.append({**c.to_json(), "id": f"{i:04d}"})
    write_manifest(out / "generated" / "manifest.jsonl", rows)
    write_manifest(out / "reference.jsonl", ref)
    subprocess.run([sys.executable, "-m", "foley", "eval", "--generated", str(out / "generated" / "manifest.jsonl"),
                    "--reference", str(out / "reference.jsonl"), "--clip-seconds", str(duration), "-o",
                    str(out / "report")], check=True)
    return _report_fd(out / "report"), audios


def _user_set(data: Path):
    """(manifest, clips with absolute paths, the clips the fine-tunes hold out, sorted descriptions)."""
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest
    from foley.train.finetune import heldout_split

    data = data / "manifest.jsonl" if data.is_dir() else data
    clips = read_manifest(data)
    for c in clips:
        c.path = str(c.resolved_path(data.parent).resolve())
    _, threshold = heldout_split(clips)
    return data, clips, select_split(clips, "valid", threshold), sorted({c.description for c in clips})


def _clap_top1(clap, held, descriptions, audios=None) -> float:
    """foley-clap top-1 among the descriptions: of ``audios`` (one per held-out clip) or of the real clips."""
    import numpy as np

    from foley.audio import Audio

    audios = audios if audios is not None else [Audio.load(c.path) for c in held]
    sim = clap.similarity(audios, descriptions)
    return float((sim.argmax(1) == np.array([descriptions.index(c.description) for c in held])).mean())


def _probe(clap, clips, held, descriptions):
    """A classifier of the user's own descriptions: logistic regression on foley-clap audio embeddings of the
    fine-tunes' training clips (foley-clap alone may not know the user's sounds: its text side then cannot tell
    them apart, as on the GM set). Returns the classifier and its top-1 on the real held-out clips (the ceiling)."""
    from sklearn.linear_model import LogisticRegression

    from foley.audio import Audio

    held_ids = {c.path for c in held}
    train = [c for c in clips if c.path not in held_ids]
    x = clap.embed([Audio.load(c.path) for c in train])
    probe = LogisticRegression(max_iter=2000, C=10.0).fit(x, [descriptions.index(c.description) for c in train])
    real = probe.score(clap.embed([Audio.load(c.path) for c in held]), [descriptions.index(c.description)
                                                                         for c in held])
    return probe, float(real)


def _gain(run: Path) -> dict:
    """Time (steps, minutes) to the first held-out loss 2 % under the first validation, and to the best."""
    log = [json.loads(x) for x in (run / "finetune" / "log.jsonl").read_text().splitlines() if x.strip()]
    valid = [r for r in log if "valid_loss" in r]
    speed = [r["steps_per_s"] for r in log if "steps_per_s" in r]
    sps = speed[-1] if speed else float("nan")
    first = valid[0]["valid_loss"] if valid else None
    gain = next((r for r in valid if first is not None and r["valid_loss"] < 0.98 * first), None)
    best = min(valid, key=lambda r: r["valid_loss"]) if valid else None
    return {"first_heldout_loss": first, "steps_per_s": sps,
            "gain_step": gain and gain["step"], "gain_minutes": gain and round(gain["step"] / sps / 60, 2),
            "best_step": best and best["step"], "best_minutes": best and round(best["step"] / sps / 60, 2),
            "best_heldout_loss": best and best["valid_loss"]}


def run(args) -> None:
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest
    from foley.registry import family_of, resolve
    from foley.train.finetune import finetune, read_user_data, resolve_replay

    base_folder, card = resolve(args.base)
    family = card.family if card else family_of(base_folder)
    base_name = card.name if card else str(base_folder)
    replay = resolve_replay(base_folder, base_name, args.replay, args.replay_data, say=print)  # bad values: now
    sources = ", ".join(map(str, replay.manifests)) if replay else ""
    print(f"replay: {replay.fraction:g} of every batch from {sources}" if replay else "replay: off")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    data, clips, held, descriptions = _user_set(args.data)
    user = read_user_data(data, out)
    results = {"data": {"clips": len(clips), "heldout": len(held), "descriptions": len(descriptions),
                        "minutes": round(user.minutes, 1)}, "budget_minutes": args.budget, "models": {}}
    models = {"base": base_name}
    for kind, lora in (("lora", args.rank), ("full", None)):
        if kind not in args.kinds:
            continue
        dest = out / f"model-{kind}"
        t0 = time.time()
        if not dest.exists():
            finetune(base_folder, base_name, family, data, dest, run=out / f"run-{kind}", lora=lora,
                     minutes=args.budget, patience=args.patience, preview_minutes=5.0, replay=args.replay,
                     replay_data=args.replay_data, replay_target=args.replay_target)
        results["models"][kind] = {"train_wall_minutes": round((time.time() - t0) / 60, 2),
                                   **_gain(out / f"run-{kind}"),
                                   "replay": json.loads((dest / "finetune.json").read_text()).get("replay")}
        models[kind] = f"{base_name}+{dest.resolve()}" if lora else str(dest)
    adapter = out / "model-lora" / "adapter_model.safetensors"
    results["adapter_bytes"] = adapter.stat().st_size if adapter.exists() else None

    from foley.clap import load_clap

    clap = load_clap()
    probe, results["probe_top1_real_heldout"] = _probe(clap, clips, held, descriptions)
    results["clap_top1_real_heldout"] = _clap_top1(clap, held, descriptions)
    general = []
    if args.general:
        for m in args.general:
            for c in select_split(read_manifest(m), "valid", 0.03):
                c = c.model_copy()
                c.path = str(c.resolved_path(Path(m).parent).resolve())
                general.append(c)
        general = general[::max(1, len(general) // args.n_general)][:args.n_general]
    for kind, model in models.items():
        r = results["models"].setdefault(kind, {})
        r["model"] = model
        fd, audios = _generate_and_fd(model, held, out / "eval" / kind / "user", args.duration)
        r["user_fd"] = fd
        r["clap_top1"] = _clap_top1(clap, held, descriptions, audios)
        r["probe_top1"] = float(probe.score(clap.embed(audios), [descriptions.index(c.description) for c in held]))
        if general:
            r["general_fd"], _ = _generate_and_fd(model, general, out / "eval" / kind / "general", args.duration)
            if args.general_seeds > 1:  # the mean over seed sets: the FD's chance spread shrinks as 1/sqrt(K)
                sets = [r["general_fd"]] + [
                    _generate_and_fd(model, general, out / "eval" / kind / f"general-s{k}", args.duration,
                                     seed0=1_000_000 * k)[0] for k in range(1, args.general_seeds)]
                r["general_fd_sets"] = sets
                r["general_fd"] = {m: sum(x[m] for x in sets) / len(sets) for m in sets[0]}
            if kind == "base" and args.reseed:  # the same model, other seeds: how far the FD moves by chance
                r["general_fd_reseeded"], _ = _generate_and_fd(model, general, out / "eval" / "base" / "reseeded",
                                                               args.duration, seed0=100_000)
        if not args.no_control:
            subprocess.run([sys.executable, "-m", "foley", "eval", "control", "--model", model, "-o",
                            str(out / "eval" / kind / "control")], check=True)
            r["control"] = str(out / "eval" / kind / "control" / "control.json")
        if args.speed:
            import foley

            gen = foley.load(model)
            gen.generate("warm up", duration=args.duration, seed=0)
            t = time.time()
            for s in range(3):
                gen.generate(held[0].description, duration=args.duration, seed=s)
            r["seconds_per_sound"] = round((time.time() - t) / 3, 3)
    _write(results, out, base_name, args.data)


def _write(results: dict, out: Path, base_name: str, data) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1))
    tuned = [k for k in ("lora", "full") if k in results["models"]]
    replay = (results["models"].get(tuned[0]) if tuned else {}).get("replay") or {}
    replayed = (f"replay {replay['fraction']:.0%} of every batch from {replay.get('clips')} clips of "
                f"{', '.join(replay.get('sources', []))}, learnt as {replay.get('target', 'data')}"
                if replay.get("fraction") else "no replay")
    size = f"{results['adapter_bytes'] / 1e6:.2f} MB" if results.get("adapter_bytes") else "-"
    lines = [f"# Fine-tuning bench: {base_name} on {data}", "",
             f"{results['data']}; budget {results['budget_minutes']} min; {replayed}; adapter {size}", "",
             f"real held-out clips: probe top-1 {results.get('probe_top1_real_heldout', float('nan')):.2f} (the "
             f"ceiling), foley-clap top-1 {results.get('clap_top1_real_heldout', float('nan')):.2f} (chance "
             f"{1 / results['data']['descriptions']:.2f})", "",
             "| model | held-out FD (user) | probe top-1 | CLAP top-1 | general FD | control | gain at (min) "
             "| best at (min) | s/sound |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in ("base", *tuned):
        r = results["models"][kind]
        fd = {k: round(v, 2) for k, v in r.get("user_fd", {}).items() if not k.startswith("fd_inf")}
        gfd = {k: round(v, 2) for k, v in r.get("general_fd", {}).items() if not k.startswith("fd_inf")}
        control = "-"
        if r.get("control") and Path(r["control"]).exists():
            control = f"{json.loads(Path(r['control']).read_text())['overall']['share']:.1%}"
        lines.append(f"| {kind} | {fd} | {r.get('probe_top1', float('nan')):.2f} | "
                     f"{r.get('clap_top1', float('nan')):.2f} | {gfd or '-'} | {control} | "
                     f"{r.get('gain_minutes', '-')} | {r.get('best_minutes', '-')} | "
                     f"{r.get('seconds_per_sound', '-')} |")
    lines += _forgetting_lines(results, tuned)
    again = results["models"]["base"].get("general_fd_reseeded")
    if again:
        first = results["models"]["base"]["general_fd"]
        lines += ["", "the base's general FD from other seeds (chance alone): " + ", ".join(
            f"{k} {first[k]:.2f} -> {v:.2f} ({100 * (v / first[k] - 1):+.1f} %)" for k, v in again.items()
            if k in first and not k.startswith("fd_inf"))]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _forgetting_lines(results: dict, tuned: list[str]) -> list[str]:
    """Forgetting per general FD metric, paired by seed set (base and fine-tune drew the same prompts and seeds in
    set k): the mean of the per-set ratios - 1 and its standard error over the sets (chance shared by a pair
    cancels; the spread left is what the goal's 10 % is read against)."""
    import statistics

    base = results["models"]["base"].get("general_fd_sets")
    if not base or len(base) < 2:
        return []
    out = ["", f"forgetting, paired by seed set ({len(base)} sets of the general held-out clips): "
           "fine-tune / base - 1, mean ± s.e. over the sets"]
    for kind in tuned:
        sets = results["models"][kind].get("general_fd_sets")
        if not sets or len(sets) != len(base):
            continue
        parts = []
        for m in base[0]:
            if m.startswith("fd_inf") or m not in sets[0]:
                continue
            ratios = [t[m] / b[m] - 1 for t, b in zip(sets, base, strict=True)]
            se = statistics.stdev(ratios) / len(ratios) ** 0.5
            parts.append(f"{m} {100 * statistics.mean(ratios):+.1f} ± {100 * se:.1f} %")
        out.append(f"- {kind}: " + ", ".join(parts))
    return out


def probe_again(args) -> None:
    """Recompute the description classifiers (probe and foley-clap top-1) of a finished ``run`` from its saved
    generations (``<out>/eval/<kind>/user/generated``), without generating again."""
    from foley.audio import Audio
    from foley.clap import load_clap

    out = args.out
    results = json.loads((out / "results.json").read_text())
    data, clips, held, descriptions = _user_set(args.data)
    clap = load_clap()
    probe, results["probe_top1_real_heldout"] = _probe(clap, clips, held, descriptions)
    results["clap_top1_real_heldout"] = _clap_top1(clap, held, descriptions)
    for kind, r in results["models"].items():
        gen = out / "eval" / kind / "user" / "generated"
        audios = [Audio.load(gen / f"{i:04d}.wav") for i in range(len(held))]
        r["clap_top1"] = _clap_top1(clap, held, descriptions, audios)
        r["probe_top1"] = float(probe.score(clap.embed(audios), [descriptions.index(c.description) for c in held]))
    _write(results, out, results["models"]["base"].get("model", "base"), args.data)


def speed(args) -> None:
    """Generation speed with and without the adapter, side by side: both generators loaded in this process, the
    same prompts and seeds, alternated A B A B (a busy machine slows both alike); medians and the ratio."""
    import statistics

    import foley
    from foley import threads

    threads.apply(args.threads)
    plain, adapted = foley.load(args.base), foley.load(args.base, lora=str(args.adapter))
    prompts = ["a wooden door creaks open", "rain on a tin roof", "a helicopter passing"]
    for g in (plain, adapted):
        g.generate("warm up", duration=args.duration, seed=0)
    times = {"base": [], "adapter": []}
    for i in range(args.rounds):
        for name, g in (("base", plain), ("adapter", adapted)) if i % 2 == 0 else (("adapter", adapted),
                                                                                  ("base", plain)):
            t = time.perf_counter()
            g.generate(prompts[i % len(prompts)], duration=args.duration, seed=i)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = statistics.median(a / b for a, b in zip(times["adapter"], times["base"], strict=True))
    size = sum(f.stat().st_size for f in Path(args.adapter).glob("*.safetensors"))
    body = (f"`{args.base}` with and without the adapter {args.adapter} ({size / 1e6:.2f} MB), {args.duration:g} s "
            f"sounds at the model's defaults, {args.rounds} rounds alternated, torch threads "
            f"{threads.current()}.\n\n| model | median s per sound | all |\n|---|---|---|\n"
            + "".join(f"| {k} | {med[k]:.3f} | {', '.join(f'{x:.2f}' for x in v)} |\n" for k, v in times.items())
            + f"\nadapter / base, median of the rounds' ratios: **{ratio:.3f}**")
    if args.no_record:
        print(body)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from common import record

        record("Fine-tuning: generation speed with an adapter", body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("-o", "--out", type=Path, default=Path("corpora/gm-sfx"))
    b.add_argument("--minutes", type=float, default=60.0)
    b.add_argument("--seconds", type=float, default=4.0)
    b.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, default=Path("corpora/gm-sfx"))
    r.add_argument("--base", default="starter")
    r.add_argument("--budget", type=float, default=20.0, help="minutes per fine-tune")
    r.add_argument("--rank", type=int, default=8)
    r.add_argument("--patience", type=int, default=4)
    r.add_argument("--general", action="append", help="general held-out set (manifests) for forgetting")
    r.add_argument("--n-general", type=int, default=48)
    r.add_argument("--duration", type=float, default=4.0)
    r.add_argument("--no-control", action="store_true")
    r.add_argument("--speed", action="store_true")
    r.add_argument("--replay", type=float, default=None, help="share of every batch replayed from the base's "
                   "corpora (foley train finetune --replay; unset: its default, 0: off)")
    r.add_argument("--replay-data", type=Path, action="append", help="manifests to replay (default: the base's "
                   "recorded corpora)")
    r.add_argument("--replay-target", choices=("data", "base"), default=None,
                   help="what a replayed item is learnt as (foley train finetune --replay-target)")
    r.add_argument("--kinds", nargs="+", choices=("lora", "full"), default=["lora", "full"],
                   help="which fine-tunes to train and measure beside the base")
    r.add_argument("--general-seeds", type=int, default=1, help="general FD as the mean over this many seed sets "
                   "per model (each set one sound per clip)")
    r.add_argument("--reseed", action="store_true", help="also the base's general FD from other seeds (the FD's "
                   "own seed-to-seed spread, the yardstick for forgetting)")
    r.add_argument("-o", "--out", type=Path, default=Path("runs/finetune-bench"))
    p = sub.add_parser("probe", help="recompute the description classifiers of a finished run")
    p.add_argument("--data", type=Path, default=Path("corpora/gm-sfx"))
    p.add_argument("-o", "--out", type=Path, default=Path("runs/finetune-bench"))
    sp = sub.add_parser("speed", help="generation speed with and without an adapter, alternated")
    sp.add_argument("--base", default="starter")
    sp.add_argument("--adapter", type=Path, required=True)
    sp.add_argument("--duration", type=float, default=4.0)
    sp.add_argument("--rounds", type=int, default=8)
    sp.add_argument("--threads", default=None)
    sp.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.cmd == "speed":
        speed(args)
    elif args.cmd == "build":
        print(build(args.out, args.minutes, args.seconds, args.seed))
    elif args.cmd == "probe":
        probe_again(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
