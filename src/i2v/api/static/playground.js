// The playground speaks the public WaveSpeed v3 API with the user's key, like any client:
// upload the photo, submit, follow the prediction's server-sent events, play the result.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [] };

function headers() {
  return { Authorization: `Bearer ${$("key").value.trim()}` };
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || (body.code && body.code !== 200)) {
    throw new Error(`${response.status}: ${body.message || response.statusText}`);
  }
  return body.data;
}

async function loadModels() {
  if (!$("key").value.trim()) return;
  localStorage.setItem("i2v.key", $("key").value.trim());
  try {
    state.models = await api("/api/v3/models");
    showError("");
  } catch (err) {
    showError(`Could not list models (${err.message}). Is the API key right?`);
    return;
  }
  $("model").replaceChildren(...state.models.map((m) => new Option(m.name, m.model_id)));
  pickModel();
  loadHistory();
}

function pickModel() {
  const model = state.models.find((m) => m.model_id === $("model").value);
  const durations = model ? model.durations : [5];
  $("duration").replaceChildren(...durations.map((d) => new Option(`${d} s`, d)));
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  const data = await api("/api/v3/media/upload/binary", { method: "POST", body: form });
  return data.download_url;
}

// EventSource cannot send an Authorization header, so the stream is read with fetch.
async function follow(id, onEvent) {
  const response = await fetch(`/api/v3/predictions/${id}/events`, { headers: headers() });
  if (!response.ok) throw new Error(`${response.status} while following ${id}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = {};
      for (const line of block.split("\n")) {
        const colon = line.indexOf(": ");
        if (colon > 0) event[line.slice(0, colon)] = line.slice(colon + 2);
      }
      if (event.data) onEvent(event.event, JSON.parse(event.data));
    }
  }
}

function show(name, data) {
  $("job").hidden = false;
  const percent = Math.round((data.progress || 0) * 100);
  const place = data.queue_position !== undefined ? `, ${data.queue_position} ahead in the queue` : "";
  $("status").textContent = `${data.status}${place} (${percent}%)`;
  $("progress").value = data.status === "completed" ? 1 : data.progress || 0;
  if (name === "completed") {
    $("video").src = data.outputs[0];
    $("video").hidden = false;
    $("download").href = data.outputs[0];
    $("download").hidden = false;
  } else if (name === "failed" || name === "cancelled") {
    showError(`${name}: ${data.error || ""}`);
  }
}

async function generate(event) {
  event.preventDefault();
  showError("");
  $("go").disabled = true;
  $("video").hidden = true;
  $("download").hidden = true;
  try {
    $("status").textContent = "uploading";
    $("job").hidden = false;
    const image = await upload($("photo").files[0]);
    const body = {
      prompt: $("prompt").value,
      image,
      duration: Number($("duration").value),
      seed: Number($("seed").value),
    };
    const created = await api(`/api/v3/${$("model").value}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    await follow(created.id, show);
    loadHistory();
  } catch (err) {
    showError(err.message);
  } finally {
    $("go").disabled = false;
  }
}

async function loadHistory() {
  try {
    const page = await api("/api/v3/predictions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ page: 1, page_size: 10 }),
    });
    $("history").replaceChildren(...page.items.map((p) => {
      const item = document.createElement("li");
      const link = p.outputs.length ? Object.assign(document.createElement("a"), { href: p.outputs[0], textContent: "video" }) : null;
      item.append(`${p.created_at} ${p.model} — ${p.status} `);
      if (link) item.append(link);
      return item;
    }));
  } catch (err) {
    // The list is a convenience; errors already show for the main actions.
  }
}

$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  $("preview").hidden = !file;
  if (file) $("preview").src = URL.createObjectURL(file);
});
$("key").addEventListener("change", loadModels);
$("model").addEventListener("change", pickModel);
$("generate").addEventListener("submit", generate);
$("key").value = localStorage.getItem("i2v.key") || "";
loadModels();
