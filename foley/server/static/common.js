// Shared helpers of the studio, participant and results pages (vanilla JS, no build step).
"use strict";

const TOKEN_KEY = "foley_token";

function setToken(token) {
  // the API token of a server run with --auth: sent as a Bearer header, and kept as a same-site cookie so
  // that <audio>/<img> downloads (which cannot send headers) carry it too
  localStorage.setItem(TOKEN_KEY, token);
  document.cookie = `${TOKEN_KEY}=${token}; path=/; SameSite=Strict`;
}

async function api(path, opts = {}) {
  // fetch JSON; a non-2xx answer throws an Error carrying the server's one-line `detail`
  const token = localStorage.getItem(TOKEN_KEY);
  if (token && !(opts.headers && opts.headers.Authorization)) {
    opts = {...opts, headers: {...(opts.headers || {}), Authorization: `Bearer ${token}`}};
  }
  const res = await fetch(path, opts);
  if (res.status === 401 && typeof window.onAuthNeeded === "function") window.onAuthNeeded();
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const detail = body && body.detail ? body.detail : `${res.status} ${res.statusText}`;
    const err = new Error(detail);
    err.status = res.status;
    throw err;
  }
  return body;
}

function postJSON(path, obj, headers = {}) {
  return api(path, {method: "POST", headers: {"Content-Type": "application/json", ...headers},
                    body: JSON.stringify(obj)});
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c.nodeType ? c : document.createTextNode(String(c)));
  }
  return e;
}

const _peaks = new Map();

async function decodePeaks(url, width) {
  // min/max per pixel column of the first channel, from the decoded audio
  const key = `${url}|${width}`;
  if (_peaks.has(key)) return _peaks.get(key);
  const buf = await (await fetch(url)).arrayBuffer();
  const ctx = new OfflineAudioContext(1, 1, 44100);
  const audio = await ctx.decodeAudioData(buf);
  const x = audio.getChannelData(0);
  const step = Math.max(1, Math.floor(x.length / width));
  const peaks = [];
  for (let i = 0; i < width; i++) {
    let lo = 0, hi = 0;
    for (let j = i * step; j < Math.min((i + 1) * step, x.length); j++) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    peaks.push([lo, hi]);
  }
  const out = {peaks, duration: audio.duration};
  _peaks.set(key, out);
  return out;
}

function drawWave(canvas, data, selection = null, cursor = null) {
  // waveform of `data` (from decodePeaks); `selection` = [start, end] seconds shaded; `cursor` seconds
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#f4f1ea";
  g.fillRect(0, 0, w, h);
  if (selection && data.duration > 0) {
    const a = selection[0] / data.duration * w, b = selection[1] / data.duration * w;
    g.fillStyle = "rgba(214, 96, 48, 0.28)";
    g.fillRect(Math.min(a, b), 0, Math.abs(b - a), h);
  }
  // scaled to the clip's own peak so quiet clips still show their shape
  const peak = Math.max(1e-4, ...data.peaks.map(([lo, hi]) => Math.max(-lo, hi)));
  const k = 0.95 * h / 2 / peak;
  g.strokeStyle = "#2d4a53";
  g.beginPath();
  data.peaks.forEach(([lo, hi], i) => {
    g.moveTo(i + 0.5, h / 2 - hi * k);
    g.lineTo(i + 0.5, h / 2 - lo * k + 1);
  });
  g.stroke();
  if (cursor !== null && data.duration > 0) {
    g.strokeStyle = "#d66030";
    g.beginPath();
    g.moveTo(cursor / data.duration * w, 0);
    g.lineTo(cursor / data.duration * w, h);
    g.stroke();
  }
}

async function waveform(canvas, url, audioEl = null) {
  // draw the waveform of `url` and follow the playback position of `audioEl`
  const data = await decodePeaks(url, canvas.width);
  drawWave(canvas, data);
  if (audioEl) {
    const tick = () => {
      drawWave(canvas, data, null, audioEl.currentTime);
      if (!audioEl.paused) requestAnimationFrame(tick);
    };
    audioEl.addEventListener("play", () => requestAnimationFrame(tick));
    audioEl.addEventListener("seeked", tick);
  }
  return data;
}

function fmt(x, digits = 1) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}
