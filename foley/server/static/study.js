// Participant page: one session (kept in localStorage so a reload resumes it), one trial at a time.
"use strict";

const $ = (sel) => document.querySelector(sel);
const studyId = window.location.pathname.split("/").filter(Boolean)[1];
const storeKey = `foley-study-${studyId}`;
let study = null, session = null, current = 0, answer = null, played = new Set();

function fail(err) {
  $("#error").textContent = String(err.message || err);
  $("#error").hidden = false;
}

async function init() {
  study = await api(`/v1/studies/${studyId}`);
  document.title = study.name;
  $("#study-title").textContent = study.name;
  $("#instructions").textContent = study.instructions;
  const pid = localStorage.getItem(storeKey);
  if (pid) {
    try {
      session = await api(`/v1/studies/${studyId}/participants/${pid}`);
      $("#start").textContent = session.completed ? "Finished" : "Continue";
      if (session.completed) { $("#intro").hidden = true; $("#done").hidden = false; }
    } catch (err) { localStorage.removeItem(storeKey); }
  }
  $("#start").disabled = false;  // only once the study is loaded: showTrial reads it
}

$("#start").addEventListener("click", async () => {
  try {
    if (!session) {
      session = await api(`/v1/studies/${studyId}/participants`, {method: "POST"});
      localStorage.setItem(storeKey, session.participant);
    }
    $("#intro").hidden = true;
    $("#trial").hidden = false;
    const answered = new Set(session.answered);
    current = session.trials.findIndex((t) => !answered.has(t.index));
    if (current < 0) current = session.trials.length - 1;
    showTrial();
  } catch (err) { fail(err); }
});

function ready() {
  const t = session.trials[current];
  const allPlayed = t.audio.every((_, i) => played.has(i));
  $("#need-play").textContent = allPlayed ? "" : "Play every sound to answer.";
  $("#next").disabled = !(allPlayed && answer !== null && !answer.__partial);
}

function slider(name, lo, hi) {
  const mid = Math.round((lo + hi) / 2);
  const value = el("span", {class: "num"}, "–");
  const input = el("input", {type: "range", min: lo, max: hi, step: 1, value: mid, name, "aria-label": name});
  input.addEventListener("input", () => {
    value.textContent = input.value;
    answer = answer || {};
    answer[name] = Number(input.value);
    const all = Object.keys(study.scales).every((k) => answer[k] !== undefined);
    if (!all) answer.__partial = true; else delete answer.__partial;
    ready();
  });
  const label = {ovl: "Overall quality (OVL)", rel: "Relevance to the text (REL)"}[name] || name;
  return el("div", {class: "slider"}, el("span", {}, label), input, value);
}

function showTrial() {
  const t = session.trials[current];
  answer = null;
  played = new Set();
  $("#counter").textContent = `Sound ${current + 1} of ${session.trials.length}`;
  $("#question").textContent = {matching: "Which description fits this sound best?",
    ab: "Which sound do you prefer (quality and match to the description)?",
    emotion: "How strongly does this sound express each emotion?",
    ovl_rel: "Rate the sound's overall quality and how well it matches the description."}[study.protocol];
  $("#description").textContent = t.description ? `“${t.description}”` : "";
  const names = t.audio.length === 2 ? ["A", "B"] : [""];
  $("#players").replaceChildren(...t.audio.map((url, i) => {
    const a = el("audio", {controls: true, src: url, preload: "auto", class: "trial-audio", "data-side": names[i]});
    a.addEventListener("play", () => { played.add(i); ready(); });
    return el("div", {class: "player"}, names[i] ? el("b", {}, `Sound ${names[i]}`) : "", a);
  }));
  const box = $("#answer");
  if (Object.keys(study.scales).length) {
    box.replaceChildren(...Object.entries(study.scales).map(([k, [lo, hi]]) => slider(k, lo, hi)));
  } else {
    const options = t.choices ? t.choices.map((c) => [c, c]) : [["A", "Sound A"], ["B", "Sound B"]];
    box.replaceChildren(...options.map(([value, text]) => {
      const input = el("input", {type: "radio", name: "choice", value});
      input.addEventListener("change", () => { answer = {choice: value}; ready(); });
      return el("label", {class: "choice"}, input, text);
    }));
  }
  ready();
}

$("#next").addEventListener("click", async () => {
  if (!answer || answer.__partial) return;
  $("#next").disabled = true;
  try {
    await postJSON(`/v1/studies/${studyId}/participants/${session.participant}/answers`,
                   {trial: session.trials[current].index, response: answer});
    if (current + 1 < session.trials.length) {
      current += 1;
      showTrial();
    } else {
      await api(`/v1/studies/${studyId}/participants/${session.participant}/complete`, {method: "POST"});
      $("#trial").hidden = true;
      $("#done").hidden = false;
    }
  } catch (err) { fail(err); $("#next").disabled = false; }
});

init().catch(fail);
