// Owner's results page: the token comes from the link's #token=... (never sent in a URL to the server).
"use strict";

const $ = (sel) => document.querySelector(sel);
const studyId = window.location.pathname.split("/").filter(Boolean)[1];
const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
const auth = {Authorization: `Bearer ${token}`};

function ciText(m, d = 1) {
  return m.ci95 ? `[${fmt(m.ci95[0], d)}, ${fmt(m.ci95[1], d)}]` : "–";
}

function barChart(title, rows, lo, hi) {
  // rows: [{label, mean, ci95}] -> an SVG bar chart with 95 % CI whiskers on the scale lo..hi
  const w = 640, rowH = 28, left = 170, h = rows.length * rowH + 40;
  const x = (v) => left + (v - lo) / (hi - lo) * (w - left - 20);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  add("text", {x: 8, y: 16, "font-size": 13, "font-weight": 600}, title);
  rows.forEach((r, i) => {
    const y = 28 + i * rowH;
    add("text", {x: 8, y: y + 15, "font-size": 12}, r.label.slice(0, 24));
    if (r.mean === null) return;
    add("rect", {x: left, y: y + 4, width: Math.max(1, x(r.mean) - left), height: rowH - 10, fill: "#2d4a53"});
    if (r.ci95) {
      const [a, b] = r.ci95.map((v) => x(Math.min(Math.max(v, lo), hi)));
      add("line", {x1: a, x2: b, y1: y + rowH / 2, y2: y + rowH / 2, stroke: "#d66030", "stroke-width": 2});
      add("line", {x1: a, x2: a, y1: y + 7, y2: y + rowH - 7, stroke: "#d66030", "stroke-width": 2});
      add("line", {x1: b, x2: b, y1: y + 7, y2: y + rowH - 7, stroke: "#d66030", "stroke-width": 2});
    }
    const end = r.ci95 ? x(Math.min(r.ci95[1], hi)) : x(r.mean);
    add("text", {x: Math.min(end + 6, w - 40), y: y + 15, "font-size": 11, fill: "#6b7479"}, fmt(r.mean));
  });
  add("text", {x: left, y: h - 4, "font-size": 10, fill: "#6b7479"}, String(lo));
  add("text", {x: w - 30, y: h - 4, "font-size": 10, fill: "#6b7479"}, String(hi));
  return svg;
}

function alphaText(a) {
  return a.alpha === null ? `Krippendorff's α (${a.level}): undefined — ${a.note}`
    : `Krippendorff's α (${a.level}): ${fmt(a.alpha, 3)} (${a.raters} raters, ${a.units} units)`;
}

function ratings(res, scales) {
  const out = [];
  for (const [scale, r] of Object.entries(res.ratings)) {
    const [lo, hi] = scales[scale];
    out.push(el("h3", {}, scale.toUpperCase()));
    out.push(el("table", {class: "ratings", "data-scale": scale},
      el("tr", {}, el("th", {}, "System"), el("th", {}, "Mean"), el("th", {}, "95 % CI"),
        el("th", {}, "Participants"), el("th", {}, "Ratings")),
      Object.entries(r.by_system).map(([sys, m]) => el("tr", {"data-system": sys},
        el("td", {}, sys), el("td", {class: "num mean"}, fmt(m.mean)), el("td", {class: "num"}, ciText(m)),
        el("td", {class: "num"}, m.n), el("td", {class: "num"}, m.n_ratings)))));
    out.push(barChart(`${scale} by system (mean, 95 % CI)`,
      Object.entries(r.by_system).map(([sys, m]) => ({label: sys, ...m})), lo, hi));
    out.push(el("p", {class: "alpha"}, alphaText(r.alpha)));
    out.push(el("details", {}, el("summary", {}, "per clip"),
      el("table", {}, el("tr", {}, el("th", {}, "System"), el("th", {}, "Description"), el("th", {}, "Mean"),
        el("th", {}, "95 % CI"), el("th", {}, "n")),
      r.by_clip.map((c) => el("tr", {}, el("td", {}, c.system), el("td", {}, c.description),
        el("td", {class: "num"}, fmt(c.mean)), el("td", {class: "num"}, ciText(c)), el("td", {class: "num"}, c.n))))));
  }
  return out;
}

function confusion(labels, matrix, caption) {
  const max = Math.max(1, ...matrix.map((row) => Math.max(...row)));
  return el("table", {class: "confusion"},
    el("caption", {}, caption),
    el("tr", {}, el("th", {}, "true \\ chosen"), labels.map((l) => el("th", {}, l))),
    matrix.map((row, i) => el("tr", {}, el("th", {}, labels[i]), row.map((c, j) => el("td", {
      "data-true": labels[i], "data-chosen": labels[j],
      style: `background: rgba(214, 96, 48, ${(c / max * 0.85).toFixed(2)})`}, c)))));
}

function matching(m) {
  const acc = m.accuracy;
  const out = [el("p", {id: "accuracy"}, `Accuracy ${fmt(acc.mean, 2)} ${ciText(acc, 2)} — ${acc.correct} of ` +
    `${acc.answers} correct; chance with ${m.k} choices is ${fmt(m.chance, 2)}.`),
  el("h3", {}, "Confusion matrix"),
  confusion(m.labels, m.matrix, "Generated clips: rows are the true descriptions, columns the chosen ones")];
  if (m.reference) out.push(confusion(m.labels, m.reference.matrix, "Reference clips"));
  out.push(el("h3", {}, "Accuracy by system"));
  out.push(el("table", {}, el("tr", {}, el("th", {}, "System"), el("th", {}, "Accuracy"), el("th", {}, "95 % CI")),
    Object.entries(m.by_system).map(([s, v]) => el("tr", {"data-system": s}, el("td", {}, s),
      el("td", {class: "num"}, fmt(v.accuracy.mean, 2)), el("td", {class: "num"}, ciText(v.accuracy, 2))))));
  out.push(el("p", {class: "alpha"}, alphaText(m.alpha)));
  return out;
}

function ab(a) {
  return [el("table", {class: "ab"}, el("tr", {}, el("th", {}, "System"), el("th", {}, "preferred over"),
    el("th", {}, "Rate"), el("th", {}, "95 % CI"), el("th", {}, "Wins"), el("th", {}, "p")),
  a.pairs.map((p) => el("tr", {}, el("td", {}, p.systems[0]), el("td", {}, p.systems[1]),
    el("td", {class: "num"}, fmt(p.rate, 2)), el("td", {class: "num"}, `[${fmt(p.ci95[0], 2)}, ${fmt(p.ci95[1], 2)}]`),
    el("td", {class: "num"}, `${p.wins[0]}–${p.wins[1]}`), el("td", {class: "num"}, fmt(p.p_value, 3))))),
  el("p", {class: "alpha"}, alphaText(a.alpha))];
}

async function load() {
  const include = $("#include-failed").checked;
  const res = await api(`/v1/studies/${studyId}/results?include_failed=${include}`, {headers: auth});
  const info = await api(`/v1/studies/${studyId}`);
  $("#title").textContent = `${res.study.name} — ${res.study.protocol}`;
  $("#participant-link").href = `/study/${studyId}`;
  const p = res.participants;
  $("#summary").replaceChildren(
    el("p", {id: "participants"}, `${p.total} participant(s), ${p.included.length} included in the analysis.`),
    p.excluded.length ? el("p", {class: "bad"}, "Excluded: " + p.excluded.map((e) => `${e.id} (${e.reason})`).join(", "))
      : "",
    el("details", {}, el("summary", {}, "screening"), el("table", {},
      el("tr", {}, el("th", {}, "Participant"), el("th", {}, "Passed"), el("th", {}, "Checks")),
      Object.entries(res.screening).map(([id, s]) => el("tr", {}, el("td", {}, id),
        el("td", {}, s.passed === null ? "nothing checked" : s.passed ? "yes" : "no"),
        el("td", {}, s.checks.map((c) => `${c.kind} ${c.unit}: ${c.detail}`).join("; ")))))),
    el("p", {class: "hint"}, res.statistics));
  let body = [];
  if (res.ratings) body = ratings(res, info.scales);
  if (res.matching) body = matching(res.matching);
  if (res.ab) body = ab(res.ab);
  $("#body").replaceChildren(...body);
}

async function download(path, name) {
  const res = await fetch(path, {headers: auth});
  if (!res.ok) throw new Error((await res.json()).detail);
  const a = el("a", {href: URL.createObjectURL(await res.blob()), download: name});
  document.body.append(a);
  a.click();
  a.remove();
}

$("#export-json").addEventListener("click", () =>
  download(`/v1/studies/${studyId}/export.json`, `study_${studyId.slice(0, 8)}.json`).catch(showErr));
$("#export-csv").addEventListener("click", () =>
  download(`/v1/studies/${studyId}/export.csv`, `study_${studyId.slice(0, 8)}.csv`).catch(showErr));
$("#include-failed").addEventListener("change", () => load().catch(showErr));

function showErr(err) {
  $("#error").textContent = String(err.message || err);
  $("#error").hidden = false;
}

load().catch(showErr);
