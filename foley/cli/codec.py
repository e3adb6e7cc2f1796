"""`foley codec encode|decode|info` (audio <-> token files) and `foley stream` (progressive generation)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import FoleyError, RequestError
from . import app
from .options import with_threads

codec_app = typer.Typer(help="Neural codec: audio <-> discrete tokens (.foley token files).", no_args_is_help=True)
app.add_typer(codec_app, name="codec")

DEFAULT_CODEC = "starter-lm"
_CODEC_HELP = ("Codec: a codec folder, an LM model (its codec), or a public codec such as facebook/encodec_24khz.")


def load_codec(name: str):
    """A codec by name: a codec folder, an LM model folder or registry name (its ``codec/``), or a public codec
    (``facebook/encodec_24khz``...) through :func:`foley.load`; each follows :class:`foley.codec.Codec`."""
    from ..codec import CODEC_META, Codec, load_folder
    from ..errors import ModelError
    from ..registry import family_of, resolve

    p = Path(name).expanduser()
    if p.is_dir() and (p / CODEC_META).is_file():
        return load_folder(p, name=name)
    if p.is_dir() and (p / "foley.json").is_file() or not p.is_dir():
        folder, card = resolve(name)
        if (card.family if card is not None else family_of(folder)) == "lm":
            return load_folder(folder / "codec", name=name if card is None else card.name)
    from .. import load

    obj = load(name)
    if not isinstance(obj, Codec):
        raise ModelError(f"'{name}' is not a codec; use a codec folder, an LM model or facebook/encodec_24khz")
    return obj


@codec_app.command("encode")
@with_threads
def encode(
    input: Path = typer.Argument(..., help="Audio file."),
    output: Path = typer.Option(..., "--output", "-o", help="Token file to write (.foley)."),
    codec: str = typer.Option(DEFAULT_CODEC, "--codec", "-c", help=_CODEC_HELP),
    bandwidth: float = typer.Option(None, "--bandwidth", "-b", help="Bitrate per channel in kbps (see `info`)."),
    n_q: int = typer.Option(None, "--n-q", help="Number of codebooks (instead of --bandwidth)."),
    mono: bool = typer.Option(False, "--mono", help="Mix to mono first (stereo is coded per channel)."),
):
    """Encode audio to a token file; prints the bitrate and codebook usage."""
    from ..audio import Audio, info
    from ..codec.tokens import TokenFile, write_tokens
    from ..fsutil import check_writable

    info(input)  # fails fast on a missing or unreadable file
    check_writable(output, "token file")
    c = load_codec(codec)
    n = _n_q(c, bandwidth, n_q)
    audio = Audio.load(input)
    if mono:
        audio = audio.to_mono()
    if audio.sample_rate != c.sample_rate:
        audio = audio.resample(c.sample_rate)
    import numpy as np

    codes = np.stack([_encode_channel(c, Audio(audio.samples[i:i + 1], c.sample_rate), n)
                      for i in range(audio.channels)])
    # a folder is recorded by its absolute path (decodable from anywhere); a registry name as it is
    name = str(Path(codec).expanduser().resolve()) if Path(codec).expanduser().is_dir() else c.card.name
    tf = TokenFile(codes=codes, codec=name, codec_hash=c.weight_hash(), sample_rate=c.sample_rate,
                   frame_rate=float(c.frame_rate), codebook_size=int(c.codebook_size), length=audio.frames,
                   extra={"source": input.name})
    write_tokens(output, tf)
    typer.echo(f"wrote {output}")
    _report(tf, output)


def _n_q(c, bandwidth: float | None, n_q: int | None) -> int:
    """Codebooks to keep, for ours (n_q_for) and the public codecs (bandwidth ladder)."""
    if hasattr(c, "n_q_for"):
        return c.n_q_for(bandwidth, n_q)
    if bandwidth is not None and n_q is not None:
        raise RequestError("give --bandwidth or --n-q, not both")
    probe = c.encode(_probe(c), bandwidth=bandwidth if n_q is None else None)
    if n_q is not None and not 1 <= n_q <= probe.shape[0]:
        raise RequestError(f"'{c.card.name}' has {probe.shape[0]} codebooks; --n-q {n_q} is outside "
                           f"1..{probe.shape[0]}")
    return n_q or probe.shape[0]


def _probe(c):
    import numpy as np

    from ..audio import Audio

    return Audio(np.zeros((1, int(c.hop_length)), np.float32), c.sample_rate)


def _encode_channel(c, audio, n: int):
    if hasattr(c, "n_q_for"):
        return c.encode(audio, n_q=n)
    return c.encode(audio)[:n]  # public codecs: the first n codebooks of the highest bandwidth


@codec_app.command("decode")
@with_threads
def decode(
    input: Path = typer.Argument(..., help="Token file (.foley) from `foley codec encode`."),
    output: Path = typer.Option(..., "--output", "-o", help="Audio file to write (.wav, .flac, .ogg)."),
    codec: str = typer.Option(None, "--codec", "-c", help="Codec to use (default: the one named in the file)."),
):
    """Decode a token file to audio of the original length (at the codec's rate)."""
    import numpy as np

    from ..audio import Audio
    from ..codec.tokens import check_against_codec, read_tokens
    from ..fsutil import check_writable

    if output.suffix.lower() not in (".wav", ".flac", ".ogg"):
        raise RequestError(f"{output}: cannot write '{output.suffix or '(none)'}' files; use .wav, .flac or .ogg")
    tf = read_tokens(input)
    check_writable(output)
    c = load_codec(codec or tf.codec)
    if c.weight_hash() != tf.codec_hash:
        raise FoleyError(f"{input}: made by codec '{tf.codec}' (weights {tf.codec_hash}) but '{c.card.name}' has "
                         f"weights {c.weight_hash()}; pass the codec that encoded it with --codec")
    if c.sample_rate != tf.sample_rate or c.codebook_size != tf.codebook_size:
        raise FoleyError(f"{input}: codes are {tf.sample_rate} Hz x {tf.codebook_size} codes; '{c.card.name}' is "
                         f"{c.sample_rate} Hz x {c.codebook_size}")
    check_against_codec(tf, c, str(input))
    chans = [c.decode(tf.codes[i], frames=tf.length).samples[0] for i in range(tf.channels)]
    Audio(np.stack(chans).astype(np.float32), c.sample_rate).save(output)
    typer.echo(f"wrote {output}  ({tf.length / tf.sample_rate:.2f} s, {tf.channels} ch, {c.sample_rate} Hz)")


@codec_app.command("info")
def codec_info(
    target: str = typer.Argument(..., help="A token file (.foley) or a codec (folder or name)."),
):
    """Show a token file's header, bitrate and codebook usage, or a codec's rates and bitrates."""
    from ..codec.tokens import read_tokens

    p = Path(target)
    if p.is_file():
        _report(read_tokens(p), p)
        return
    c = load_codec(target)
    typer.echo(f"codec {c.card.name}  weights {c.weight_hash()}")
    typer.echo(f"  {c.sample_rate} Hz, hop {c.hop_length} samples = {c.frame_rate:g} frames/s, "
               f"{c.codebook_size} codes per codebook")
    typer.echo(f"  bandwidths (kbps per channel): {', '.join(f'{b:.3g}' for b in c.bandwidths)}")


def _report(tf, path: Path) -> None:
    h = tf.header()
    typer.echo(f"{path}: codec {h['codec']} ({h['codec_hash']}), {tf.sample_rate} Hz, {tf.channels} ch, "
               f"{tf.frame_rate:g} frames/s, {tf.n_q} x {tf.codebook_size} codes, {tf.frames} frames, "
               f"{tf.length / tf.sample_rate:.2f} s")
    size = path.stat().st_size if path.is_file() else 0
    typer.echo(f"  bitrate {tf.bitrate / 1000:.3g} kbps ({tf.bits_per_code} bits x {tf.n_q} codebooks x "
               f"{tf.frame_rate:g} Hz x {tf.channels} ch); file {size} bytes")
    usage = ", ".join(f"q{u['codebook']} {100 * u['used']:.1f}% (perplexity {u['perplexity']:.0f})"
                      for u in tf.usage())
    typer.echo(f"  codebook usage: {usage}")


@app.command("stream")
@with_threads
def stream(
    prompt: str = typer.Argument(..., help="What the sound should be."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .wav (written as it grows), or - for raw "
                                "16-bit PCM on stdout (e.g. `| aplay -f S16_LE -r 16000 -c 2`)."),
    model: str = typer.Option("starter-lm", "--model", "-m", help="A token-LM model (name or folder)."),
    duration: float = typer.Option(10.0, "--duration", "-d", help="Seconds of audio."),
    seed: int = typer.Option(None, "--seed"),
    guidance: float = typer.Option(None, "--guidance", "-g", help="Classifier-free guidance (<= 1: off)."),
    negative: str = typer.Option(None, "--negative", help="Negative prompt (the guidance's other branch)."),
    top_k: int = typer.Option(None, "--top-k", help="Sample among the k likeliest codes (0: all)."),
    top_p: float = typer.Option(None, "--top-p", help="Nucleus sampling mass (0: off)."),
    temperature: float = typer.Option(None, "--temperature"),
):
    """Generate with a token LM and write audio chunk by chunk while it is sampled."""
    import time

    from ..fsutil import write_json_atomic
    from ..request import make_request

    req = make_request(prompt=prompt, duration=duration, seed=seed, guidance_scale=guidance, negative_prompt=negative)
    to_stdout = str(output) == "-"
    if not to_stdout and output.suffix.lower() != ".wav":
        raise RequestError(f"{output}: streaming writes .wav files (or - for stdout)")
    if not to_stdout:
        from ..fsutil import check_writable

        check_writable(output)
    from .. import load
    from ..registry import check_request, describe, streaming

    card, caps = describe(model)
    if caps is None or not caps.streams:
        raise RequestError(f"model '{model}' cannot stream; models that can: {', '.join(streaming()) or 'none'}")
    check_request(model, req)
    gen = load(model, top_k=top_k, top_p=top_p, temperature=temperature)
    t0 = time.perf_counter()
    sink = _StdoutSink() if to_stdout else _WavSink(output, gen.sample_rate, gen.channels)
    meta = None
    try:
        for chunk in gen.stream(req):
            if meta is None:
                typer.echo(f"first chunk after {1000 * (time.perf_counter() - t0):.0f} ms", err=True)
            meta = chunk.meta
            sink.write(chunk.samples)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    took = time.perf_counter() - t0
    typer.echo(f"{'streamed' if to_stdout else f'wrote {output}'}  ({duration:g} s in {took:.2f} s, "
               f"seed {meta['seed']})", err=True)
    if not to_stdout:
        write_json_atomic(output.with_suffix(".json"), {"file": output.name, **{k: v for k, v in meta.items()
                                                                               if k not in ("chunk", "offset")}})


class _WavSink:
    """A WAV that grows while chunks arrive (``<name>.part.wav``), renamed onto the target at the end."""

    def __init__(self, path: Path, rate: int, channels: int):
        import soundfile as sf

        from ..audio import SAVE_FORMATS

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.part = path, path.with_name(path.stem + ".part.wav")
        fmt, subtype = SAVE_FORMATS["wav"]  # as Audio.save: the same file as `foley generate` writes
        self.file = sf.SoundFile(str(self.part), "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype)

    def write(self, samples) -> None:
        import numpy as np

        self.file.write(np.clip(samples, -1.0, 1.0).T)
        self.file.flush()

    def close(self) -> None:
        import os

        self.file.close()
        os.replace(self.part, self.path)

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.part.unlink(missing_ok=True)


class _StdoutSink:
    def write(self, samples) -> None:
        from ..audio import pcm16

        sys.stdout.buffer.write(pcm16(samples))
        sys.stdout.buffer.flush()

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
