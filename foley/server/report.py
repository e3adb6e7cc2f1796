"""A plain-text rendering of a study analysis (what `foley study analyse` prints)."""

from __future__ import annotations


def _ci(m: dict, fmt: str = "{:.1f}") -> str:
    if m.get("mean") is None:
        return "no answers"
    ci = m.get("ci95")
    ci_s = f"  95% CI [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "  (CI needs 2+ participants)"
    return f"{fmt.format(m['mean'])}{ci_s}  n={m['n']}"


def _alpha(a: dict) -> str:
    if a["alpha"] is None:
        return f"Krippendorff's alpha ({a['level']}): undefined, {a.get('note', '')}"
    return (f"Krippendorff's alpha ({a['level']}): {a['alpha']:.3f}  "
            f"({a['raters']} raters, {a['units']} units)")


def report_text(result: dict) -> str:
    st, parts = result["study"], result["participants"]
    lines = [f"study {st['id']}  '{st['name']}'  protocol {st['protocol']}",
             f"participants: {parts['total']} total, {len(parts['included'])} included"]
    lines += [f"  excluded {e['id']}: {e['reason']}" for e in parts["excluded"]]
    if "ratings" in result:
        for scale, r in result["ratings"].items():
            lines.append(f"\n{scale.upper()}")
            lines += [f"  {system:20s} {_ci(m)}" for system, m in r["by_system"].items()]
            lines.append("  " + _alpha(r["alpha"]))
    if "matching" in result:
        m = result["matching"]
        acc = m["accuracy"]
        lines.append(f"\nmatching: {m['k']} choices per trial (chance {m['chance']:.2f})")
        lines.append(f"  accuracy {_ci(acc, '{:.2f}')}  ({acc['correct']}/{acc['answers']} correct)")
        for system, v in m["by_system"].items():
            lines.append(f"  {system:20s} accuracy {_ci(v['accuracy'], '{:.2f}')}")
        width = max(len(x) for x in m["labels"])
        lines.append("  confusion matrix (rows: true description, columns: chosen):")
        for i, label in enumerate(m["labels"]):
            lines.append(f"    {label:{width}s} " + " ".join(f"{c:4d}" for c in m["matrix"][i]))
        lines.append("  " + _alpha(m["alpha"]))
    if "ab" in result:
        lines.append("\nA/B preference")
        for p in result["ab"]["pairs"]:
            a, b = p["systems"]
            lines.append(f"  {a} over {b}: {p['rate']:.2f}  95% CI [{p['ci95'][0]:.2f}, {p['ci95'][1]:.2f}]  "
                         f"({p['wins'][0]}-{p['wins'][1]}, p={p['p_value']:.3g})")
        lines.append("  " + _alpha(result["ab"]["alpha"]))
    return "\n".join(lines)
