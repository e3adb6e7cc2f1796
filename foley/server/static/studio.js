// The web studio: generate, edit, history, and building listening tests. Talks only to /v1/... .
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {page: 1, perPage: 10, selected: new Map(), refs: [], editSource: null, editWave: null,
               selection: null, history: [], models: [], running: {}};

// --- API token (servers run with --auth) ------------------------------------------------------------------
window.onAuthNeeded = () => { $("#token-form").hidden = false; $("#token").focus(); };
$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setToken($("#token").value.trim());
  $("#token-form").hidden = true;
  showError("#gen-error", null);
  loadModels().catch((err) => showError("#gen-error", err));
});

// --- tabs ----------------------------------------------------------------------------------------------
function showTab(name) {
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== `tab-${name}`; });
  if (name === "history") loadHistory();
  if (name === "edit") fillPicker();
}
document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

function showError(id, err) {
  const box = $(id);
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// --- models ------------------------------------------------------------------------------------------
async function loadModels() {
  const info = await api("/v1/models");
  state.models = info.models;
  fillEditModels();
  const sel = $("#model");
  sel.replaceChildren(...info.models.map((m) => el("option", {value: m.name, selected: m.default},
    m.available ? m.name : `${m.name} (missing)`)));
  // the chosen model sets the longest duration, and its capabilities which settings apply (e.g. token models
  // have no denoising steps): a field the model does not take is disabled
  const apply = () => {
    const m = info.models.find((x) => x.name === sel.value) || {};
    const dur = $("#duration");
    dur.max = m.max_duration ? Math.min(m.max_duration, info.limits.max_duration) : info.limits.max_duration;
    const takes = (name) => !m.capabilities || m.capabilities.settings.some((s) => s.name === name);
    for (const [id, name] of [["#steps", "steps"], ["#guidance", "guidance_scale"], ["#negative", "negative_prompt"]]) {
      const field = $(id), off = !takes(name);
      field.dataset.hint ??= field.placeholder;  // the page's own placeholder, kept for models that take it
      field.disabled = off;
      if (off) field.value = "";
      field.placeholder = off ? "n/a for this model" : field.dataset.hint;
    }
    $("#stream").hidden = !(m.capabilities && m.capabilities.streams);  // only models that can stream()
    applyControl(m, info.models);
  };
  sel.onchange = apply;
  apply();
}

// --- jobs ----------------------------------------------------------------------------------------------
async function pollJob(id, prefix) {
  const bar = $(`#${prefix}-progress`), text = $(`#${prefix}-status-text`), stop = $(`#${prefix}-cancel`);
  $(`#${prefix}-status`).hidden = false;
  stop.hidden = false;
  stop.onclick = () => api(`/v1/generations/${id}`, {method: "DELETE"}).catch(() => {});
  try {
    for (;;) {
      const job = await api(`/v1/generations/${id}`);
      bar.value = job.status === "done" ? 1 : job.progress;
      text.textContent = job.status === "queued" && job.queue_position
        ? `queued (${job.queue_position} ahead)` : job.status === "running"
          ? `${job.cancel_requested ? "stopping" : "running"} ${Math.round(job.progress * 100)} %` : job.status;
      if (["done", "failed", "cancelled"].includes(job.status)) {
        if (job.status === "cancelled") throw new Error("cancelled");
        return job;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  } finally {
    stop.hidden = true;
  }
}

function outputCard(job, out) {
  const audio = el("audio", {controls: true, src: out.audio_url, class: "result-audio", preload: "auto"});
  const canvas = el("canvas", {width: 600, height: 80, class: "wave"});
  waveform(canvas, out.audio_url, audio).catch(() => {});
  const r = job.request;
  return el("div", {class: "card", "data-job": job.id},
    el("div", {class: "card-title"}, `“${r.prompt}”`),
    el("div", {class: "meta"}, `${job.kind === "edit" ? r.task + " · " : ""}${job.model} · ${fmt(out.duration)} s · ` +
      `seed ${out.seed} · ${out.sample_rate} Hz · ${out.channels} ch` +
      (out.best_of ? ` · best of ${out.best_of.n} (CLAP ${out.best_of.clap.toFixed(3)})` : "")),
    adherenceLine(job, out),
    audio, canvas,
    el("img", {src: out.spectrogram_url, alt: "spectrogram", class: "spec"}),
    el("div", {class: "actions"},
      el("a", {href: `${out.audio_url}&download=1`, class: "download"}, "Download WAV"),
      el("a", {href: out.provenance_url, target: "_blank"}, "Provenance JSON"),
      el("button", {onclick: () => again(job, out.seed)}, "Generate again with this seed"),
      el("button", {onclick: () => editThis(job, out.index)}, "Edit this clip")));
}

function renderJob(job, container) {
  container.replaceChildren(...job.outputs.map((o) => outputCard(job, o)));
}

function field(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : v;
}

async function submitGeneration(body) {
  showError("#gen-error", null);
  $("#generate").disabled = true;
  try {
    const job = await postJSON("/v1/generations", body);
    const done = await pollJob(job.id, "gen");
    if (done.status === "failed") throw new Error(done.error);
    renderJob(done, $("#gen-result"));
  } catch (err) {
    showError("#gen-error", err);
  } finally {
    $("#generate").disabled = false;
  }
}

$("#gen-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (id) => (field(id) === undefined ? undefined : Number(field(id)));
  let control;
  try {
    control = await controlFields(num("#duration"));
  } catch (err) {
    showError("#gen-error", err);
    return;
  }
  submitGeneration({prompt: $("#prompt").value, negative_prompt: field("#negative"), model: field("#model"),
    duration: num("#duration"), seed: num("#seed"), steps: num("#steps"), guidance_scale: num("#guidance"),
    num_variations: num("#variations"), best_of: num("#best-of"), ...control});
});

function again(job, seed) {
  const r = job.request;
  if (job.kind !== "generate") { editThis(job, 0); return; }
  $("#prompt").value = r.prompt;
  $("#negative").value = r.negative_prompt || "";
  $("#model").value = job.model;
  $("#duration").value = r.duration;
  $("#seed").value = seed;
  $("#steps").value = r.steps ?? "";
  $("#guidance").value = r.guidance_scale ?? "";
  $("#variations").value = 1;
  $("#best-of").value = 1;  // the seed is the chosen candidate's: one draw reproduces it
  showTab("generate");
  $("#gen-form").requestSubmit();
}

// --- control curves: drawn over the timeline, an imitation, steering (docs/control.md) -----------------------
// A drawn curve is kept as 512 bins over the sound's length (NaN = not drawn), each the pen's height 0..1 on the
// curve's own axis; it is sent as points at 20 per second from 0 to the duration, in the curve's unit. A curve
// drawn over part of the timeline gets strength 0 elsewhere (the server stretches a curve to the duration).
const CURVE_BINS = 512, CURVE_RATE = 20, CURVE_PAD = 12, CURVE_AXIS = 16;  // px: margin; time axis at the bottom
const hz = (v) => (v >= 1000 ? `${v / 1000} kHz` : `${v} Hz`);
const CURVES = {
  loudness: {lo: -40, hi: 0, ticks: [0, -10, -20, -30, -40], digits: 1, color: "#d66030",
             label: (v) => `${v === 0 ? 0 : "−" + -v} dB`, axis: "loudness (dB)"},
  brightness: {lo: 200, hi: 8000, log: true, ticks: [200, 500, 1000, 2000, 4000, 8000], digits: 0, color: "#a07a16",
               label: hz, axis: "brightness (Hz)"},
  pitch: {lo: 100, hi: 2000, log: true, ticks: [100, 200, 500, 1000, 2000], digits: 1, color: "#2d4a53",
          label: hz, axis: "pitch (Hz)"},
  density: {lo: 0, hi: 16, ticks: [0, 4, 8, 12, 16], digits: 2, color: "#6a4c93", label: (v) => `${v}/s`,
            axis: "density (onsets/s)"},
  pan: {lo: -12, hi: 12, ticks: [12, 6, 0, -6, -12], digits: 2, color: "#3b7d4a", axis: "pan (dB, + = right)",
        label: (v) => (v === 12 ? "right +12 dB" : v === -12 ? "left −12 dB" : v === 0 ? "centre"
          : `${v > 0 ? "+" : "−"}${Math.abs(v)} dB`)},
};
state.curves = Object.fromEntries(Object.keys(CURVES).map((n) => [n, new Float32Array(CURVE_BINS).fill(NaN)]));
state.curveNames = Object.keys(CURVES);  // the curves the chosen model follows
state.steerMax = 50;
state.like = null;  // the uploaded imitation ({id, filename, duration})
state.likePending = null;

function curveValue(name, frac) {
  const c = CURVES[name];
  return c.log ? c.lo * (c.hi / c.lo) ** frac : c.lo + (c.hi - c.lo) * frac;
}

function curveFrac(name, value) {
  const c = CURVES[name];
  return c.log ? Math.log(value / c.lo) / Math.log(c.hi / c.lo) : (value - c.lo) / (c.hi - c.lo);
}

function controlDuration() {
  const d = Number($("#duration").value);
  return Number.isFinite(d) && d > 0 ? d : 1;
}

function drawnCurves() {
  return state.curveNames.filter((n) => state.curves[n].some((x) => !Number.isNaN(x)));
}

function sampleCurve(name, duration) {
  // {times, values[, strength]} at CURVE_RATE points per second from 0 to `duration` s, or null when not drawn
  const bins = state.curves[name];
  const filled = Float64Array.from(bins), mask = Float64Array.from(bins, (x) => (Number.isNaN(x) ? 0 : 1));
  if (!mask.some((m) => m)) return null;
  let last = -1;  // undrawn bins take the nearest drawn height (with strength 0): values stay in range
  const prev = new Int32Array(CURVE_BINS), next = new Int32Array(CURVE_BINS);
  for (let i = 0; i < CURVE_BINS; i++) { if (mask[i]) last = i; prev[i] = last; }
  last = -1;
  for (let i = CURVE_BINS - 1; i >= 0; i--) { if (mask[i]) last = i; next[i] = last; }
  for (let i = 0; i < CURVE_BINS; i++) {
    if (mask[i]) continue;
    const p = prev[i], q = next[i];
    filled[i] = bins[q < 0 || (p >= 0 && i - p <= q - i) ? p : q];
  }
  const n = Math.max(2, Math.round(CURVE_RATE * duration)), scale = 10 ** CURVES[name].digits;
  const times = [], values = [], strength = [];
  for (let i = 0; i <= n; i++) {
    const pos = i / n * (CURVE_BINS - 1), a = Math.floor(pos), b = Math.min(a + 1, CURVE_BINS - 1), f = pos - a;
    times.push(i === n ? duration : Math.round(i * duration / n * 1e4) / 1e4);
    values.push(Math.round(curveValue(name, filled[a] + (filled[b] - filled[a]) * f) * scale) / scale);
    strength.push(Math.round((mask[a] + (mask[b] - mask[a]) * f) * 1000) / 1000);
  }
  return strength.every((s) => s === 1) ? {times, values} : {times, values, strength};
}

async function controlFields(duration) {
  // the request's control fields from the Control section (nothing when the model cannot follow curves)
  if ($("#control").hidden) return {};
  const out = {}, steer = $("#steer-label").hidden ? undefined : field("#steer");
  if (steer !== undefined) {
    const k = Number(steer);
    if (!Number.isInteger(k) || k < 0 || k > state.steerMax) {
      throw new Error(`steer iterations must be a whole number from 0 to ${state.steerMax}, got '${steer}'`);
    }
    out.steer = k;
  }
  const names = drawnCurves();
  if (names.length) {
    if (!(duration > 0)) throw new Error("set the duration before sending drawn curves");
    out.controls = Object.fromEntries(names.map((n) => [n, sampleCurve(n, duration)]));
  }
  for (const q of ["texture", "tremolo"]) {  // whole-sound qualities: one word each, steered
    if (!$(`#${q}-label`).hidden && $(`#${q}`).value) out.controls = {...(out.controls || {}), [q]: $(`#${q}`).value};
  }
  if (state.likePending) await state.likePending;
  if (state.like) out.like = `upload:${state.like.id}`;
  return out;
}

function applyControl(m, models) {
  // show the Control section only for a model that follows control curves (by steering, or through a control
  // adapter alone: then without the steering field), and only its curves
  const setting = (x, name) => (x.capabilities ? x.capabilities.settings.find((s) => s.name === name) : null);
  const follows = (x) => x.available !== false && (!x.capabilities || !!setting(x, "controls") || !!setting(x, "steer"));
  const can = follows(m), note = $("#control-note");
  $("#control").hidden = !can;
  note.hidden = can || !m.name;
  if (!can) {
    const able = models.filter(follows).map((x) => x.name);
    note.textContent = `Control curves: model '${m.name}' cannot follow them` +
      (able.length ? `; models here that can: ${able.join(", ")}.` : "; no model on this server can.");
    return;
  }
  const choices = setting(m, "controls");
  state.curveNames = Object.keys(CURVES).filter((n) => !choices || !choices.choices || choices.choices.includes(n));
  const steer = setting(m, "steer");
  $("#steer-label").hidden = !!m.capabilities && !steer;  // an adapter alone: no steering iterations to set
  for (const q of ["texture", "tremolo"]) {  // offered where the model steers towards them
    $(`#${q}-label`).hidden = !(choices && choices.choices && choices.choices.includes(q));
    if ($(`#${q}-label`).hidden) $(`#${q}`).value = "";
  }
  state.steerMax = Math.min(50, steer && steer.maximum !== undefined ? steer.maximum : 50);
  $("#steer").max = state.steerMax;
  $("#steer").placeholder = steer && steer.default !== null && steer.default !== undefined
    ? `server default (${steer.default})` : "server default";
  const sel = $("#curve-name"), keep = sel.value;
  sel.replaceChildren(...state.curveNames.map((n) => el("option", {value: n}, CURVES[n].axis)));
  sel.value = state.curveNames.includes(keep) ? keep : (state.curveNames.includes("pitch") ? "pitch" : state.curveNames[0]);
  renderCurves();
}

function renderCurves() {
  const canvas = $("#curve-canvas"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  const active = $("#curve-name").value, dur = controlDuration();
  const yOf = (frac) => h - CURVE_AXIS - CURVE_PAD - frac * (h - CURVE_AXIS - 2 * CURVE_PAD);
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#f4f1ea";
  g.fillRect(0, 0, w, h);
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  if (CURVES[active]) {  // the active curve's axis, in its unit
    for (const v of CURVES[active].ticks) {
      const y = Math.round(yOf(curveFrac(active, v))) + 0.5;
      g.strokeStyle = "#ddd6c8";
      g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
      g.fillStyle = "#6b7479";
      g.textBaseline = y < 14 ? "top" : "bottom";
      g.fillText(CURVES[active].label(v), 4, y < 14 ? y + 2 : y - 2);
    }
  }
  g.fillStyle = "#ebe6da";
  g.fillRect(0, h - CURVE_AXIS, w, CURVE_AXIS);
  g.textBaseline = "bottom";
  g.fillStyle = "#6b7479";
  for (const [frac, align] of [[0, "left"], [0.25, "center"], [0.5, "center"], [0.75, "center"], [1, "right"]]) {
    g.textAlign = align;  // the time axis, in seconds of the sound
    g.fillText(`${fmt(frac * dur, 2)} s`, frac === 0 ? 4 : frac * w - (frac === 1 ? 4 : 0), h - 2);
  }
  if (CURVES[active] && state.curves[active].every((x) => Number.isNaN(x))) {
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(`press and drag to draw the ${active} curve`, w / 2, (h - CURVE_AXIS) / 2);
  }
  g.textAlign = "left";
  for (const name of [...state.curveNames.filter((n) => n !== active), active]) {  // the active one on top
    const bins = state.curves[name];
    if (!bins) continue;
    g.strokeStyle = CURVES[name].color;
    g.globalAlpha = name === active ? 1 : 0.35;
    g.lineWidth = name === active ? 2.5 : 1.5;
    g.beginPath();
    let pen = false;
    bins.forEach((f, i) => {
      if (Number.isNaN(f)) { pen = false; return; }
      const x = i / (CURVE_BINS - 1) * w;
      if (pen) g.lineTo(x, yOf(f)); else { g.moveTo(x, yOf(f)); pen = true; }
    });
    g.stroke();
  }
  g.globalAlpha = 1;
  $("#curve-list").replaceChildren(...state.curveNames.map((name) => {
    const bins = state.curves[name], on = [...bins.keys()].filter((i) => !Number.isNaN(bins[i]));
    const span = on.length ? `drawn ${fmt(on[0] / (CURVE_BINS - 1) * dur, 2)}–` +
      `${fmt(on[on.length - 1] / (CURVE_BINS - 1) * dur, 2)} s` : "not drawn";
    return el("span", {class: `curve-item${name === active ? " active" : ""}`, "data-curve": name},
      el("span", {class: "swatch", style: `background:${CURVES[name].color}`}),
      el("a", {href: "#", onclick: (ev) => { ev.preventDefault(); $("#curve-name").value = name; renderCurves(); }},
        name), ` ${span} `,
      el("button", {type: "button", class: "curve-clear", disabled: !on.length, title: `clear the ${name} curve`,
        onclick: () => { state.curves[name].fill(NaN); renderCurves(); }}, "clear"));
  }));
}

(function curveDrawing() {
  const canvas = $("#curve-canvas");
  let last = null;  // [bin, frac] of the previous pointer position while drawing
  const at = (ev) => {
    const r = canvas.getBoundingClientRect();
    const u = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
    const y = (ev.clientY - r.top) / r.height * canvas.height;
    const frac = Math.min(Math.max((canvas.height - CURVE_AXIS - CURVE_PAD - y) /
                                   (canvas.height - CURVE_AXIS - 2 * CURVE_PAD), 0), 1);
    return [Math.round(u * (CURVE_BINS - 1)), frac];
  };
  const paint = ([b1, f1]) => {  // a straight stroke from the last point: it replaces what the range held
    const bins = state.curves[$("#curve-name").value];
    const [b0, f0] = last || [b1, f1];
    const lo = Math.min(b0, b1), hi = Math.max(b0, b1);
    for (let b = lo; b <= hi; b++) bins[b] = hi === lo ? f1 : f0 + (f1 - f0) * (b - b0) / (b1 - b0);
    last = [b1, f1];
    renderCurves();
  };
  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    try { canvas.setPointerCapture(ev.pointerId); } catch (_) { /* a synthetic event has no active pointer */ }
    last = null;
    paint(at(ev));
  });
  canvas.addEventListener("pointermove", (ev) => { if (last) paint(at(ev)); });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(type, () => { last = null; });
  }
  $("#curve-name").addEventListener("change", renderCurves);
  $("#duration").addEventListener("input", renderCurves);
})();

$("#like-file").addEventListener("change", () => {
  showError("#gen-error", null);
  const f = $("#like-file").files[0];
  state.like = null;
  $("#like-clear").hidden = true;
  if (!f) { $("#like-status").textContent = ""; return; }
  $("#like-status").textContent = `uploading ${f.name}…`;
  const fd = new FormData();
  fd.append("file", f);
  const pending = state.likePending = api("/v1/uploads", {method: "POST", body: fd}).then((up) => {
    if (state.likePending !== pending) return;  // another file was chosen meanwhile
    state.like = up;
    $("#like-status").textContent = `${up.filename} (${fmt(up.duration, 2)} s): its curves are the targets`;
    $("#like-clear").hidden = false;
  }).catch((err) => {
    if (state.likePending !== pending) return;
    $("#like-status").textContent = "";
    $("#like-file").value = "";
    showError("#gen-error", `imitation ${f.name}: ${err.message}`);
  }).finally(() => { if (state.likePending === pending) state.likePending = null; });
});
$("#like-clear").addEventListener("click", () => {
  state.like = null;
  $("#like-file").value = "";
  $("#like-status").textContent = "";
  $("#like-clear").hidden = true;
});

function adherenceLine(job, out) {
  // how closely the sound follows its target curves: the sidecar's control.adherence (correlation per curve)
  const r = job.request;
  if (r.task === "melody") return melodyLine(out);
  if (job.kind !== "generate" || !(r.controls || r.like || (r.steer !== null && r.steer !== undefined))) return null;
  const line = el("div", {class: "meta adherence"});
  api(out.provenance_url).then((prov) => {
    const adh = (prov.control || {}).adherence || {};
    const parts = Object.entries(adh).map(([name, a]) => {
      const corr = a.correlation === null || a.correlation === undefined ? "–" : a.correlation.toFixed(2);
      const err = a.mean_error === null || a.mean_error === undefined ? "" : ` (error ${fmt(a.mean_error, 1)} ${a.unit})`;
      return `${name} r = ${corr}${err}`;
    });
    Object.values((prov.control || {}).qualities || {}).forEach((q) =>
      parts.push(`${q.quality}: ${q.met ? "met" : "missed"} (${fmt(q.measured, 2)} ${q.units})`));
    line.textContent = parts.length ? `follows the curves: ${parts.join(" · ")}` : "no curve was measured";
  }).catch((err) => { line.textContent = `curve adherence unavailable: ${err.message}`; });
  return line;
}

function melodyLine(out) {
  // a melody edit: how often the strongest pitch class agrees with the input's (the sidecar's control.melody)
  const line = el("div", {class: "meta adherence"});
  api(out.provenance_url).then((prov) => {
    const m = (prov.control || {}).melody || {};
    const agree = m.pitch_class_agreement;
    line.textContent = agree === null || agree === undefined ? "no common sounding frames to compare the melody"
      : `follows the melody: pitch class agrees in ${(100 * agree).toFixed(0)} % of ${m.bins} frames (chance ~8 %)`;
  }).catch((err) => { line.textContent = `melody adherence unavailable: ${err.message}`; });
  return line;
}

// --- streaming: GET /v1/stream, 16-bit PCM chunks played with Web Audio as they arrive ------------------------
async function streamSound() {
  showError("#gen-error", null);
  if (!$("#control").hidden && (drawnCurves().length || state.like || state.likePending || $("#texture").value ||
                                $("#tremolo").value)) {
    showError("#gen-error", "a stream does not follow control curves or an imitation; use Generate (or clear them)");
    return;
  }
  const params = new URLSearchParams();
  const add = (name, v) => { if (v !== undefined) params.set(name, v); };
  add("prompt", $("#prompt").value);
  add("model", field("#model"));
  add("duration", field("#duration"));
  add("seed", field("#seed"));
  add("guidance_scale", field("#guidance"));
  add("negative_prompt", field("#negative"));
  if (state.stream && state.stream.ctx) state.stream.ctx.close();  // a new stream replaces the one playing
  const abort = new AbortController(), token = localStorage.getItem(TOKEN_KEY);
  const bar = $("#gen-progress"), text = $("#gen-status-text"), stop = $("#gen-cancel");
  const st = state.stream = {received: 0, scheduled: 0, done: false, ctx: null};
  $("#generate").disabled = $("#stream").disabled = true;
  $("#gen-status").hidden = stop.hidden = false;
  stop.onclick = () => abort.abort();  // the server stops generating when the connection closes
  bar.value = 0;
  text.textContent = "starting";
  try {
    const res = await fetch(`/v1/stream?${params}`, {signal: abort.signal,
      headers: token ? {Authorization: `Bearer ${token}`} : {}});
    if (!res.ok) {
      if (res.status === 401 && window.onAuthNeeded) window.onAuthNeeded();
      const body = await res.json().catch(() => ({}));
      throw new Error(body.detail || `${res.status} ${res.statusText}`);
    }
    const rate = Number(res.headers.get("X-Sample-Rate")), ch = Number(res.headers.get("X-Channels"));
    const frames = Number(res.headers.get("X-Frames")), seed = res.headers.get("X-Seed");
    const ctx = st.ctx = new AudioContext({sampleRate: rate});
    let at = ctx.currentTime + 0.05, rest = new Uint8Array(0);
    const parts = [], reader = res.body.getReader();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      parts.push(value);
      st.received += value.length;
      const bytes = new Uint8Array(rest.length + value.length);
      bytes.set(rest);
      bytes.set(value, rest.length);
      const n = Math.floor(bytes.length / (2 * ch));  // whole sample frames; the rest waits for the next chunk
      rest = bytes.slice(n * 2 * ch);
      if (!n) continue;
      const pcm = new DataView(bytes.buffer, 0, n * 2 * ch), buf = ctx.createBuffer(ch, n, rate);
      for (let c = 0; c < ch; c++) {
        const out = buf.getChannelData(c);
        for (let i = 0; i < n; i++) out[i] = pcm.getInt16((i * ch + c) * 2, true) / 32768;
      }
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      at = Math.max(at, ctx.currentTime);
      src.start(at);
      at += n / rate;
      st.scheduled += n / rate;
      bar.value = st.received / (frames * ch * 2);
      text.textContent = `streaming ${fmt(st.scheduled)} of ${fmt(frames / rate)} s`;
    }
    st.done = true;
    text.textContent = "done";
    bar.value = 1;
    const wav = new Blob([wavHeader(rate, ch, st.received / (2 * ch)), ...parts], {type: "audio/wav"});
    const url = URL.createObjectURL(wav);
    $("#gen-result").replaceChildren(el("div", {class: "card stream-card"},
      el("div", {class: "card-title"}, `“${params.get("prompt")}”`),
      el("div", {class: "meta"}, `streamed · ${res.headers.get("X-Model")} · ${fmt(st.scheduled)} s · seed ${seed} · ` +
        `${rate} Hz · ${ch} ch (not kept in History)`),
      el("audio", {controls: true, src: url, class: "result-audio"}),
      el("div", {class: "actions"}, el("a", {href: url, download: `stream_${seed}.wav`, class: "download"},
        "Download WAV"))));
  } catch (err) {
    showError("#gen-error", abort.signal.aborted ? "stream stopped" : err);
  } finally {
    stop.hidden = true;
    $("#generate").disabled = $("#stream").disabled = false;
  }
}
$("#stream").addEventListener("click", () => {
  if ($("#gen-form").reportValidity()) streamSound();
});

function wavHeader(rate, ch, frames) {
  // 44-byte header of 16-bit PCM, for keeping a streamed sound as a WAV file
  const v = new DataView(new ArrayBuffer(44)), data = frames * ch * 2;
  const put = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
  put(0, "RIFF"); v.setUint32(4, 36 + data, true); put(8, "WAVEfmt "); v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); v.setUint16(22, ch, true); v.setUint32(24, rate, true);
  v.setUint32(28, rate * ch * 2, true); v.setUint16(32, ch * 2, true); v.setUint16(34, 16, true);
  put(36, "data"); v.setUint32(40, data, true);
  return v.buffer;
}

// --- history ------------------------------------------------------------------------------------------
async function loadHistory() {
  const h = await api(`/v1/generations?page=${state.page}&per_page=${state.perPage}`);
  state.history = h.items;
  const rows = h.items.map((job) => {
    const r = job.request, out = job.outputs[0];
    const key = (i) => `${job.id}:${i}`;
    const box = el("input", {type: "checkbox", class: "pick", disabled: job.status !== "done",
      title: "use in a listening test", checked: job.outputs.length && state.selected.has(key(0))});
    box.addEventListener("change", () => {
      job.outputs.forEach((o) => (box.checked
        ? state.selected.set(key(o.index), {job: job.id, index: o.index}) : state.selected.delete(key(o.index))));
      $("#study-count").textContent = state.selected.size;
    });
    return el("tr", {"data-job": job.id},
      el("td", {}, box), el("td", {}, new Date(job.created_at).toLocaleString()),
      el("td", {}, r.prompt, r.negative_prompt ? el("div", {class: "meta"}, `not: ${r.negative_prompt}`) : ""),
      el("td", {}, r.task), el("td", {}, job.model), el("td", {}, `${fmt(r.duration)} s`),
      el("td", {}, out ? out.seed : r.seed ?? "–"), el("td", {}, r.steps ?? "default"),
      el("td", {}, r.guidance_scale ?? "default"),
      el("td", {title: job.error || ""}, job.status === "failed" ? `failed: ${job.error}` : job.status),
      el("td", {}, out ? el("audio", {controls: true, src: out.audio_url, preload: "none"}) : ""),
      el("td", {}, job.status === "done"
        ? el("button", {onclick: () => again(job, out.seed)}, job.kind === "generate" ? "Again with this seed" : "Edit")
        : ""));
  });
  $("#history tbody").replaceChildren(...rows);
  const pages = Math.max(1, Math.ceil(h.total / h.per_page));
  $("#page-info").textContent = `page ${h.page} of ${pages} (${h.total} jobs)`;
  $("#prev").disabled = h.page <= 1;
  $("#next").disabled = h.page >= pages;
}
$("#prev").addEventListener("click", () => { state.page -= 1; loadHistory(); });
$("#next").addEventListener("click", () => { state.page += 1; loadHistory(); });

// --- editing ------------------------------------------------------------------------------------------
async function fillPicker() {
  const h = await api("/v1/generations?page=1&per_page=50");
  const opts = [el("option", {value: ""}, "— choose a generation —")];
  h.items.filter((j) => j.status === "done").forEach((j) => j.outputs.forEach((o) =>
    opts.push(el("option", {value: `${j.id}:${o.index}`, "data-url": o.audio_url},
      `${j.request.prompt.slice(0, 60)} (seed ${o.seed})`))));
  const sel = $("#edit-pick"), keep = sel.value;
  sel.replaceChildren(...opts);
  sel.value = keep;
}

async function setEditSource(source, url) {
  state.editSource = source;
  state.selection = null;
  $("#edit-audio").src = url;
  state.editWave = await decodePeaks(url, $("#edit-wave").width);
  drawWave($("#edit-wave"), state.editWave);
}

$("#edit-file").addEventListener("change", async () => {
  const f = $("#edit-file").files[0];
  if (!f) return;
  showError("#edit-error", null);
  document.querySelector("input[name=src][value=upload]").checked = true;
  try {
    const fd = new FormData();
    fd.append("file", f);
    const up = await api("/v1/uploads", {method: "POST", body: fd});
    await setEditSource({source_upload: up.id}, up.audio_url);
  } catch (err) { showError("#edit-error", err); }
});

$("#edit-pick").addEventListener("change", async () => {
  const opt = $("#edit-pick").selectedOptions[0];
  if (!opt || !opt.value) return;
  document.querySelector("input[name=src][value=pick]").checked = true;
  const [job, index] = opt.value.split(":");
  await setEditSource({source_job: job, source_index: index}, opt.dataset.url);
});

function editThis(job, index) {
  showTab("edit");
  const out = job.outputs[index];
  fillPicker().then(() => { $("#edit-pick").value = `${job.id}:${index}`; });
  document.querySelector("input[name=src][value=pick]").checked = true;
  $("#edit-prompt").value = job.request.prompt;
  if ([...$("#edit-model").options].some((o) => o.value === job.model)) $("#edit-model").value = job.model;
  setEditSource({source_job: job.id, source_index: index}, out.audio_url);
}

function fillEditModels() {
  // the Edit tab's own model list: only the models whose tasks include the chosen edit
  const task = $("#edit-task").value, sel = $("#edit-model"), keep = sel.value;
  const able = state.models.filter((m) => m.available && (m.tasks || []).includes(task));
  sel.replaceChildren(...(able.length ? able.map((m) => el("option", {value: m.name}, m.name))
    : [el("option", {value: "", disabled: true}, `no model here can do ${task}`)]));
  const prefer = [keep, $("#model").value].find((v) => able.some((m) => m.name === v));
  if (prefer) sel.value = prefer;
}

function updateTaskFields() {
  const task = $("#edit-task").value;
  document.querySelectorAll("[data-task]").forEach((e) => { e.hidden = e.dataset.task !== task; });
  fillEditModels();
}
$("#edit-task").addEventListener("change", updateTaskFields);
updateTaskFields();

(function selectionByDrag() {
  const canvas = $("#edit-wave");
  let dragging = false;
  const seconds = (ev) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(Math.max(ev.clientX - r.left, 0), r.width);
    return state.editWave ? x / r.width * state.editWave.duration : 0;
  };
  const show = () => {
    const [a, b] = state.selection;
    $("#mask-start").value = Math.min(a, b).toFixed(2);
    $("#mask-end").value = Math.max(a, b).toFixed(2);
    drawWave(canvas, state.editWave, state.selection);
  };
  canvas.addEventListener("mousedown", (ev) => {
    if (!state.editWave) return;
    dragging = true;
    state.selection = [seconds(ev), seconds(ev)];
    $("#edit-task").value = "inpaint";
    updateTaskFields();
    show();
  });
  canvas.addEventListener("mousemove", (ev) => { if (dragging) { state.selection[1] = seconds(ev); show(); } });
  window.addEventListener("mouseup", () => { dragging = false; });
})();

$("#edit-submit").addEventListener("click", async () => {
  showError("#edit-error", null);
  if (!state.editSource) { showError("#edit-error", "choose an input clip first (upload or pick one)"); return; }
  const task = $("#edit-task").value;
  const fd = new FormData();
  fd.append("task", task);
  for (const [k, v] of Object.entries(state.editSource)) fd.append(k, v);
  const add = (name, id) => { const v = field(id); if (v !== undefined) fd.append(name, v); };
  add("prompt", "#edit-prompt");
  add("seed", "#edit-seed");
  add("steps", "#edit-steps");
  add("model", "#edit-model");
  if (task === "inpaint") { add("mask_start", "#mask-start"); add("mask_end", "#mask-end"); }
  if (task === "style_transfer") add("strength", "#strength");
  if (task === "extend") add("duration", "#edit-duration");
  if (task === "super_resolution") add("cutoff_hz", "#cutoff");
  if (task === "variation") add("strength", "#variation-strength");
  if (task === "loop") { add("period", "#period"); add("duration", "#loop-duration"); }
  if (task === "melody") add("duration", "#melody-duration");
  $("#edit-submit").disabled = true;
  try {
    const job = await api("/v1/edits", {method: "POST", body: fd});
    const done = await pollJob(job.id, "edit");
    if (done.status === "failed") throw new Error(done.error);
    renderJob(done, $("#edit-result"));
  } catch (err) {
    showError("#edit-error", err);
  } finally {
    $("#edit-submit").disabled = false;
  }
});

// --- listening tests -----------------------------------------------------------------------------------
$("#ref-files").addEventListener("change", async () => {
  showError("#study-error", null);
  for (const f of $("#ref-files").files) {
    try {
      const fd = new FormData();
      fd.append("file", f);
      const up = await api("/v1/uploads", {method: "POST", body: fd});
      const desc = el("input", {placeholder: "its description (as in the prompts)", class: "ref-desc"});
      state.refs.push({upload: up.id, input: desc});
      $("#ref-list").append(el("div", {class: "ref"}, `${up.filename} (${fmt(up.duration)} s) `, desc));
    } catch (err) { showError("#study-error", `${f.name}: ${err.message}`); }
  }
  $("#ref-files").value = "";
});

$("#study-create").addEventListener("click", async () => {
  showError("#study-error", null);
  const clips = [...state.selected.values()];
  for (const r of state.refs) clips.push({upload: r.upload, description: r.input.value.trim(), reference: true});
  const num = (id) => (field(id) === undefined ? undefined : Number(field(id)));
  try {
    const s = await postJSON("/v1/studies", {name: $("#study-name").value, protocol: $("#study-protocol").value,
      clips, k: num("#study-k"), repeats: num("#study-repeats")});
    const origin = window.location.origin;
    $("#study-links").replaceChildren(el("div", {class: "card"},
      el("p", {}, `Study “${s.name}” (${s.protocol}): ${s.clips} clips, ${s.units} items.`),
      el("p", {}, "Participant link: ", el("a", {id: "participant-link", href: s.participant_url, target: "_blank"},
        origin + s.participant_url)),
      el("p", {}, "Your results (keep this link private; it cannot be shown again): ",
        el("a", {id: "results-link", href: s.results_url, target: "_blank"}, origin + s.results_url))));
  } catch (err) { showError("#study-error", err); }
});

loadModels().catch((err) => showError("#gen-error", err));
