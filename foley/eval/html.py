"""Self-contained HTML reports: tables plus inline base64 PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
font-size:14px}th{background:#f3f3f3}.na{color:#a33}.small{color:#666;font-size:12px}img{max-width:100%}
code{background:#f6f6f6;padding:1px 3px}"""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> str:
    """A matplotlib figure as an ``<img>`` tag with an inline base64 PNG (the figure is closed)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return html.escape(str(x))


def table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>")


def _ci(m: dict) -> str:
    ci = m.get("ci95")
    return f"{fmt(m.get('mean'))} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else fmt(m.get("mean"))


def metrics_table(metrics: dict) -> str:
    rows = []
    for name, m in metrics.items():
        if m.get("status") != "ok":
            rows.append([f"<b>{html.escape(name)}</b>", "<span class=na>unavailable</span>",
                         f"<span class=small>{html.escape(m.get('reason', ''))}</span>", ""])
            continue
        if "value" in m:
            val = fmt(m["value"])
            sub = m.get("subsets")
            unc = (f"subsets: {fmt(sub['mean'])} ± {fmt(sub['sd'])} (n={sub['size']}, ×{sub['count']})"
                   if sub and "mean" in sub else (sub or {}).get("reason", ""))
        elif "precision" in m:
            val, unc = f"precision {fmt(m['precision'])}, recall {fmt(m['recall'])}", f"k={m['k']}"
        else:
            val, unc = _ci(m), f"95 % CI, n={m.get('n')}"
        better = {True: "↑ better", False: "↓ better", None: ""}[m.get("higher_is_better")]
        cond = m.get("conditions", {})
        ex = cond.get("extractor", {})
        rate = cond.get("preparation", {}).get("sample_rate", "")
        where = f"{ex.get('name', '')} {ex.get('hash', '')[:8]} @ {rate} Hz"
        rows.append([f"<b>{html.escape(m.get('id', name))}</b>", val,
                     f"{html.escape(unc)} <span class=small>{html.escape(m.get('unit') or '')} {better}</span>",
                     f"<span class=small>{html.escape(where if ex else str(cond.get('pairing', '')))}</span>"])
    return table(["metric", "value", "uncertainty", "conditions"], rows)


def _spec(ax, frames: np.ndarray, title: str, frame_rate: float):
    ax.imshow(frames.T, origin="lower", aspect="auto", cmap="magma",
              extent=[0, len(frames) / frame_rate, 0, frames.shape[1]])
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("mel band", fontsize=7)
    ax.tick_params(labelsize=6)


def examples_figure(result) -> str:
    rep = result.report
    ex = rep.get("examples")
    if not ex or "logmel" not in result.generated.features:
        return ""
    plt = _plt()
    gen, ref = result.generated, result.reference
    cfg = rep["extractors"]["logmel"]["mel"]
    rate = cfg["sample_rate"] / cfg["hop_length"]
    by_name = {gen.records[i]["name"]: k for k, i in enumerate(gen.usable)}
    ref_pos = {i: k for k, i in enumerate(ref.usable)}
    partner = dict(result.pairs)
    chosen = [("best", n) for n in ex["best"]] + [("worst", n) for n in ex["worst"]]
    fig, axes = plt.subplots(len(chosen), 2, figsize=(10, 1.8 * len(chosen)), squeeze=False)
    for row, (kind, name) in enumerate(chosen):
        k = by_name[name]
        g = gen.usable[k]
        _spec(axes[row, 0], gen.features["logmel"].frames[k],
              f"{kind}: {name} (score {gen.records[g].get('score', float('nan')):.3g})", rate)
        if g in partner and partner[g] in ref_pos:
            _spec(axes[row, 1], ref.features["logmel"].frames[ref_pos[partner[g]]], "its reference", rate)
        else:
            axes[row, 1].axis("off")
    fig.tight_layout()
    return f"<h2>Best and worst items</h2><p class=small>{html.escape(ex['criterion'])}</p>{figure_png(fig)}"


def distributions_figure(result) -> str:
    metrics = result.report["metrics"]
    series = {}
    for name, m in metrics.items():
        if m.get("status") == "ok" and m.get("kind") == "paired":
            series[name] = [r["paired"][name] for r in result.generated.records if name in r.get("paired", {})]
        elif m.get("status") == "ok" and "values" in m.get("subsets", {}):
            series[f"{name} (subsets)"] = m["subsets"]["values"]
    scores = [r["score"] for r in result.generated.records if "score" in r]
    if scores:
        series["example score"] = scores
    if not series:
        return ""
    plt = _plt()
    n = len(series)
    cols = min(3, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3.4 * cols, 2.4 * ((n + cols - 1) // cols)),
                             squeeze=False)
    for ax, (name, v) in zip(axes.ravel(), series.items(), strict=False):
        v = np.asarray([x for x in v if x is not None and np.isfinite(x)])
        ax.hist(v, bins=min(20, max(3, len(v))), color="#4a7")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return f"<h2>Metric distributions</h2>{figure_png(fig)}"


def attributes_figure(attrs: dict) -> str:
    if not attrs:
        return ""
    plt = _plt()
    attrs = attrs["values"]
    names = list(attrs)
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.2 * rows), squeeze=False)
    for ax, n in zip(axes.ravel(), names, strict=False):
        for x, side, color in ((0, "generated", "#4a7"), (1, "reference", "#47a")):
            s = attrs[n][side]
            if s["mean"] is None:
                continue
            err = None
            if s["ci95"]:
                err = [[s["mean"] - s["ci95"][0]], [s["ci95"][1] - s["mean"]]]
            ax.bar(x, s["mean"], yerr=err, color=color, capsize=3)
        ax.set_xticks([0, 1], ["generated", "reference"], fontsize=7)
        ax.set_title(f"{n} ({attrs[n]['unit']})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return f"<h2>Attributes (DSP analyzers, mean with 95 % CI)</h2>{figure_png(fig)}"


def sanity_table(sanity: dict) -> str:
    rows = []
    for flag in sanity["generated"]:
        g, r = sanity["generated"][flag], sanity["reference"][flag]
        rows.append([flag, f"{g['count']} / {g['checked']}", f"{r['count']} / {r['checked']}"])
    return "<h2>Sanity</h2>" + table(["flag", "generated", "reference"], rows) + \
        f"<p class=small>thresholds: {html.escape(json.dumps(sanity['thresholds']))}</p>"


def render_report(result) -> str:
    """The whole report page for an :class:`~foley.eval.run.EvalResult`."""
    rep = result.report
    inp = rep["inputs"]
    sections = [
        "<p>" + " · ".join(f"{k}: <code>{html.escape(v['source'])}</code> ({v['n_usable']}/{v['n_items']} usable)"
                           for k, v in inp.items()) + f" · pairing: {fmt(rep['pairing']['rule'])}"
        f" ({rep['pairing']['n_pairs']} pairs)</p>",
        "<h2>Metrics</h2>", metrics_table(rep["metrics"]),
        examples_figure(result), distributions_figure(result), attributes_figure(rep.get("attributes", {})),
    ]
    if "sanity" in rep:
        sections.append(sanity_table(rep["sanity"]))
    sections.append("<h2>Settings</h2><pre class=small>" + html.escape(json.dumps(
        {"settings": rep["settings"], "extractors": rep["extractors"],
         "unavailable": rep["unavailable_extractors"], "cache": rep.get("cache")}, indent=1, default=str))
        + "</pre>")
    return page("foley eval report", sections)
