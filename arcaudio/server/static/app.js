// arcaudio web page: plain JS, no build step. Talks to the API of the same server (/v1/...).
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;          // /v1/info
let inputWav = null;      // Blob (audio/wav) for audio-to-audio, or null
let controller = null;    // AbortController of the generation in flight
const history = [];       // {prompt, settings, clips, when}

function headers(extra = {}) {
  const token = $("token").value || localStorage.getItem("arcaudio-token") || "";
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function loadInfo() {
  const saved = localStorage.getItem("arcaudio-token");
  if (saved) $("token").value = saved;
  const response = await fetch("/v1/info", { headers: headers() });
  if (response.status === 401) {
    $("token-row").hidden = false;
    $("model-info").textContent = "this server needs a token";
    return;
  }
  info = await response.json();
  $("model-info").textContent = `${info.model} · ${info.precision} · ${info.hardware} · up to ${info.max_seconds.toFixed(2)} s`;
  $("seconds").max = info.max_seconds.toFixed(2);
  if (!$("seconds").value) $("seconds").value = Math.min(3, info.max_seconds).toFixed(2);
  $("steps").value = info.defaults.steps;
  $("variations").max = info.limits.max_variations;
  $("token-row").hidden = !info.token_required;
}

// ---------------------------------------------------------------- input audio: a file or the microphone
function useInput({ blob, duration }, label) {
  inputWav = blob;
  if (info) $("seconds").value = Math.min(duration, info.max_seconds).toFixed(2);  // the output keeps the input's length
  $("input-info").textContent = label;
  $("input-player").src = URL.createObjectURL(blob);
  $("input-player").hidden = false;
  $("clear-input").hidden = false;
}

function clearInput() {
  inputWav = null;
  $("input-info").textContent = "no input: text to audio";
  $("input-player").hidden = true;
  $("clear-input").hidden = true;
}

function encodeWav(buffer) {  // AudioBuffer -> 16-bit PCM WAV Blob
  const channels = buffer.numberOfChannels, length = buffer.length, rate = buffer.sampleRate;
  const bytes = 44 + length * channels * 2;
  const view = new DataView(new ArrayBuffer(bytes));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, bytes - 8, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, channels, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * channels * 2, true);
  view.setUint16(32, channels * 2, true); view.setUint16(34, 16, true); text(36, "data");
  view.setUint32(40, length * channels * 2, true);
  const data = [...Array(channels).keys()].map((c) => buffer.getChannelData(c));
  let offset = 44;
  for (let i = 0; i < length; i++) {
    for (let c = 0; c < channels; c++) {
      const s = Math.max(-1, Math.min(1, data[c][i]));
      view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

async function toWav(blob) {  // anything the browser decodes (webm/opus from the microphone, mp3, ...) -> {WAV, s}
  const context = new AudioContext();
  try {
    const buffer = await context.decodeAudioData(await blob.arrayBuffer());
    return { blob: encodeWav(buffer), duration: buffer.duration };
  } finally {
    context.close();
  }
}

async function takeFile(file) {
  try {
    useInput(await toWav(file), `input: ${file.name}`);
  } catch (err) {
    setStatus(`cannot decode ${file.name}: ${err.message}`, true);
  }
}

let recorder = null;
async function toggleRecording() {
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setStatus(`no microphone: ${err.message}`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    recorder = null;
    $("record").textContent = "Record";
    $("record").classList.remove("recording");
    useInput(await toWav(new Blob(chunks)), "input: microphone recording");
  };
  recorder.start();
  $("record").textContent = "Stop";
  $("record").classList.add("recording");
}

// ---------------------------------------------------------------- generation with streamed progress
function settings() {
  return {
    prompt: $("prompt").value.trim(),
    seconds: parseFloat($("seconds").value),
    steps: parseInt($("steps").value, 10),
    seed: parseInt($("seed").value, 10) || 0,
    variations: parseInt($("variations").value, 10) || 1,
    strength: parseFloat($("strength").value),
  };
}

async function* sseEvents(response) {  // parse a text/event-stream body
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event) yield { event, data: data ? JSON.parse(data) : {} };
    }
  }
}

async function generate() {
  const s = settings();
  if (!s.prompt) { setStatus("type a prompt first", true); return; }
  controller = new AbortController();
  $("generate").disabled = true;
  $("cancel").disabled = false;
  $("progress").value = 0;
  setStatus("queued");
  const t0 = performance.now();
  let request;
  if (inputWav) {
    const form = new FormData();
    form.append("file", inputWav, "input.wav");
    for (const key of ["prompt", "seconds", "steps", "seed", "variations", "strength"]) form.append(key, s[key]);
    request = { method: "POST", body: form, headers: headers(), signal: controller.signal };
  } else {
    const body = { prompt: s.prompt, seconds: s.seconds, steps: s.steps, seed: s.seed, variations: s.variations };
    request = { method: "POST", body: JSON.stringify(body), signal: controller.signal,
                headers: headers({ "Content-Type": "application/json" }) };
  }
  const url = inputWav ? "/v1/audio-to-audio?stream=true" : "/v1/generate?stream=true";
  try {
    const response = await fetch(url, request);
    if (!response.ok) {
      const detail = (await response.json().catch(() => ({}))).detail;
      throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    }
    for await (const { event, data } of sseEvents(response)) {
      if (event === "queued") setStatus(data.position ? `queued behind ${data.position}` : "starting");
      if (event === "progress") {
        $("progress").value = data.step / data.steps;
        setStatus(`step ${data.step} / ${data.steps}`);
      }
      if (event === "error") throw new Error(`${data.status}: ${data.detail}`);
      if (event === "cancelled") setStatus("cancelled");
      if (event === "result") {
        const wall = (performance.now() - t0) / 1000;
        showResult(s, data, wall);
        setStatus(`${data.clips.length} clip(s) in ${wall.toFixed(2)} s · ${(data.seconds_per_clip * 1000).toFixed(0)} ms compute per clip`);
      }
    }
  } catch (err) {
    setStatus(err.name === "AbortError" ? "cancelled" : err.message, err.name !== "AbortError");
  } finally {
    $("generate").disabled = false;
    $("cancel").disabled = true;
    controller = null;
  }
}

function clipElement(prompt, clip, result) {
  const bytes = Uint8Array.from(atob(clip.audio), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: `audio/${clip.format}` }));
  const div = document.createElement("div");
  div.className = "clip";
  const name = `${prompt.replace(/[^A-Za-z0-9]+/g, "_").slice(0, 40)}_seed${clip.seed}.${clip.format}`;
  div.innerHTML = `<div class="meta"><span>seed ${clip.seed}</span><span>${clip.seconds.toFixed(2)} s</span>
    <span>${(result.seconds_per_clip * 1000).toFixed(0)} ms per clip</span><a download="${name}">download</a></div>
    <audio controls preload="auto"></audio>`;
  div.querySelector("audio").src = url;
  div.querySelector("a").href = url;
  if (clip.spectrogram_png) {
    const img = document.createElement("img");
    img.alt = `spectrogram of seed ${clip.seed}`;
    img.src = `data:image/png;base64,${clip.spectrogram_png}`;
    div.appendChild(img);
  }
  return div;
}

function showResult(s, result, wall) {
  const results = $("results");
  results.innerHTML = "";
  const heading = document.createElement("h2");
  heading.textContent = `"${s.prompt}"${inputWav ? ` from input, strength ${s.strength}` : ""}`;
  results.appendChild(heading);
  result.clips.forEach((clip) => results.appendChild(clipElement(s.prompt, clip, result)));
  history.unshift({ prompt: s.prompt, settings: s, result, wall, when: new Date() });
  renderHistory();
}

function renderHistory() {
  const list = $("history");
  list.innerHTML = "";
  history.forEach((item) => {
    const li = document.createElement("li");
    li.textContent = `${item.when.toLocaleTimeString()} · "${item.prompt}" · ${item.settings.seconds} s · ` +
      `${item.settings.steps} steps · seed ${item.settings.seed} · ${item.result.clips.length} clip(s) · ${item.wall.toFixed(2)} s`;
    li.onclick = () => {
      $("results").innerHTML = "";
      item.result.clips.forEach((clip) => $("results").appendChild(clipElement(item.prompt, clip, item.result)));
    };
    list.appendChild(li);
  });
}

// ---------------------------------------------------------------- wiring
$("generate").onclick = generate;
$("cancel").onclick = () => controller && controller.abort();
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); generate(); } });
$("strength").oninput = () => { $("strength-value").textContent = parseFloat($("strength").value).toFixed(2); };
$("record").onclick = toggleRecording;
$("file").onchange = (e) => e.target.files[0] && takeFile(e.target.files[0]);
$("clear-input").onclick = clearInput;
$("token").onchange = () => { localStorage.setItem("arcaudio-token", $("token").value); loadInfo(); };
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) takeFile(e.dataTransfer.files[0]);
});
loadInfo().catch((err) => setStatus(`cannot reach the server: ${err.message}`, true));
