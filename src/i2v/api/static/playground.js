// The playground speaks the public WaveSpeed v3 API with the user's key, like any client:
// list the models and their inputs, check the photo, upload it, submit, follow the
// prediction's server-sent events, cancel, play the result, and show the same request
// as curl, Python and JavaScript.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_ITEM = "i2v.key";
const PROMPT_MAX = 800;
// Inputs every route takes, drawn by the page itself; a route's others come from its schema.
const CORE = new Set([
  "prompt", "image", "seed", "duration", "enable_sync_mode", "enable_base64_output",
  "enable_safety_checker", "webhook_url",
]);
// The server checks these too (RunComfy's rules, i2v.intake.image); checking them here
// first spares uploading a photo that would be refused.
const RULES = { types: ["image/jpeg", "image/png", "image/webp"], maxBytes: 4.7 * 1024 * 1024,
  maxSide: 4096, minSide: 320, maxRatio: 3 };
const state = { models: [], photo: null, photoOk: false, running: null, lastSeed: null };

function key() {
  return $("key").value.trim();
}

// The key stays with this tab (sessionStorage) unless "Remember" is ticked: then it is
// kept on the device (localStorage) until unticked. Either way only one store holds it.
function storeKey() {
  const [keep, drop] = $("remember").checked
    ? [localStorage, sessionStorage] : [sessionStorage, localStorage];
  drop.removeItem(KEY_ITEM);
  if (key()) keep.setItem(KEY_ITEM, key());
  else keep.removeItem(KEY_ITEM);
}

function restoreKey() {
  const remembered = localStorage.getItem(KEY_ITEM);
  $("remember").checked = remembered !== null;
  $("key").value = remembered || sessionStorage.getItem(KEY_ITEM) || "";
}

function headers() {
  return { Authorization: `Bearer ${key()}` };
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  const message = body.message || (body.error && body.error.message) || response.statusText;
  if (!response.ok || (body.code && body.code !== 200)) {
    throw new Error(`${response.status}: ${message}`);
  }
  return body.data === undefined ? body : body.data;
}

// -- models and their inputs ---------------------------------------------------------

async function loadModels() {
  storeKey();
  $("key-hint").hidden = Boolean(key());
  if (!key()) {
    $("model").replaceChildren();
    return;
  }
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

function currentModel() {
  return state.models.find((m) => m.model_id === $("model").value);
}

function pickModel() {
  const model = currentModel();
  if (!model) return;
  $("model-about").textContent = `${model.description} Engine: ${model.engine}${model.gpu ? " (GPU)" : ""}.`;
  $("duration").replaceChildren(...model.durations.map((d) => new Option(`${d} s`, d)));
  const schema = model.api_schema.api_schemas.find((s) => s.type === "model_run").request_schema;
  const fields = Object.entries(schema.properties).filter(([name]) => !CORE.has(name));
  const legend = $("extra").querySelector("legend");
  $("extra").replaceChildren(legend, ...fields.map(([name, prop]) => field(name, prop)));
  $("extra").hidden = fields.length === 0;
}

// What a pydantic JSON schema property asks for: its type, choices, bounds, default.
function describe(prop) {
  const options = prop.anyOf ? prop.anyOf.filter((p) => p.type !== "null") : [prop];
  const main = options[0] || {};
  return {
    type: main.type,
    choices: main.enum || prop.enum || null,
    min: main.minimum, max: main.maximum, maxLength: main.maxLength,
    nullable: Boolean(prop.anyOf && prop.anyOf.some((p) => p.type === "null")),
    default: prop.default,
    help: prop.description || "",
  };
}

function field(name, prop) {
  const d = describe(prop);
  const label = document.createElement("label");
  label.title = d.help;
  const title = name.replaceAll("_", " ");
  let input;
  if (d.choices) {
    input = document.createElement("select");
    if (d.nullable) input.append(new Option("automatic", ""));
    input.append(...d.choices.map((c) => new Option(String(c), String(c))));
    if (d.default !== null && d.default !== undefined) input.value = String(d.default);
  } else if (d.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(d.default);
    label.classList.add("check");
  } else if (d.type === "integer" || d.type === "number") {
    input = document.createElement("input");
    input.type = "number";
    if (d.min !== undefined) input.min = d.min;
    if (d.max !== undefined) input.max = d.max;
    input.step = d.type === "integer" ? "1" : "any";
    input.placeholder = d.nullable ? "model default" : "";
    if (d.default !== null && d.default !== undefined) input.value = d.default;
  } else if (name === "last_image") {
    input = document.createElement("input");
    input.type = "file";
    input.accept = RULES.types.join(",");
  } else if (d.type === "array") {
    input = document.createElement("textarea");
    input.rows = 2;
    input.placeholder = "JSON, e.g. []";
  } else {
    input = document.createElement("textarea");
    input.rows = 2;
    if (d.maxLength) input.maxLength = d.maxLength;
    if (d.default) input.value = d.default;
  }
  input.id = `in-${name}`;
  input.dataset.input = name;
  input.dataset.kind = d.choices ? "choice" : d.type === "array" ? "json" : d.type || "string";
  label.append(title, input);
  return label;
}

// The route's own inputs as the request sends them: unset optional ones are left out.
async function extraInputs() {
  const inputs = {};
  for (const input of $("extra").querySelectorAll("[data-input]")) {
    const name = input.dataset.input;
    if (input.type === "file") {
      if (input.files[0]) inputs[name] = await upload(input.files[0]);
    } else if (input.type === "checkbox") {
      inputs[name] = input.checked;
    } else if (input.value === "") {
      continue;
    } else if (input.dataset.kind === "integer" || input.dataset.kind === "number") {
      inputs[name] = Number(input.value);
    } else if (input.dataset.kind === "json") {
      inputs[name] = JSON.parse(input.value);
    } else if (input.dataset.kind === "choice" && /^\d+$/.test(input.value)) {
      inputs[name] = Number(input.value);
    } else {
      inputs[name] = input.value;
    }
  }
  return inputs;
}

// -- the photo -------------------------------------------------------------------------

async function checkPhoto(file) {
  if (!RULES.types.includes(file.type)) {
    return `image: format ${file.type || "unknown"} is not accepted (JPEG, PNG or WebP)`;
  }
  if (file.size >= RULES.maxBytes) return "image: file size must be less than 4.7 MB";
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (err) {
    return "image: the file is not a readable image";
  }
  const { width, height } = bitmap;
  bitmap.close();
  if (Math.max(width, height) > RULES.maxSide) {
    return `image: at most ${RULES.maxSide} pixels a side, got ${width}x${height}`;
  }
  if (Math.min(width, height) <= RULES.minSide) {
    return `image: shortest side must be more than ${RULES.minSide} pixels, got ${Math.min(width, height)}`;
  }
  if (Math.max(width, height) / Math.min(width, height) > RULES.maxRatio) {
    return "image: ratio of long side to short side must be within 3:1";
  }
  return null;
}

async function takePhoto(file) {
  state.photo = file || null;
  state.photoOk = false;
  $("preview").hidden = !file;
  if (!file) return;
  $("preview").src = URL.createObjectURL(file);
  const problem = await checkPhoto(file);
  $("photo-error").textContent = problem || "";
  $("photo-error").hidden = !problem;
  state.photoOk = !problem;
  updateGo();
}

// -- prompt, seed, buttons -------------------------------------------------------------

function countPrompt() {
  const length = $("prompt").value.length;
  $("prompt-count").textContent = `${length}/${PROMPT_MAX}`;
  $("prompt-count").classList.toggle("over", length > PROMPT_MAX);
  updateGo();
}

function updateGo() {
  const length = $("prompt").value.length;
  $("go").disabled = Boolean(state.running) || !state.photoOk || length === 0 || length > PROMPT_MAX;
}

// -- running a prediction --------------------------------------------------------------

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

function timeLeft(progress) {
  const run = state.running;
  if (!run.startedAt || progress <= 0.02) return "";
  const elapsed = (performance.now() - run.startedAt) / 1000;
  const left = Math.max(0, elapsed / progress - elapsed);
  return `, about ${left < 60 ? `${Math.ceil(left)} s` : `${Math.ceil(left / 60)} min`} left`;
}

function show(name, data) {
  $("job").hidden = false;
  const progress = data.progress || 0;
  const percent = Math.round(progress * 100);
  if (data.status === "created") {
    const ahead = data.queue_position;
    $("status").textContent = ahead ? `queued, ${ahead} ahead in the queue` : "queued, next in line";
  } else if (data.status === "processing") {
    if (!state.running.startedAt) state.running.startedAt = performance.now();
    $("status").textContent = `processing ${percent}%${timeLeft(progress)}`;
  } else {
    $("status").textContent = `${data.status} (${percent}%)`;
  }
  $("progress").value = data.status === "completed" ? 1 : progress;
  if (name === "completed") {
    state.lastSeed = data.seed;
    $("seed-reuse").disabled = state.lastSeed === undefined;
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
  $("video").hidden = true;
  $("download").hidden = true;
  state.running = { id: null, startedAt: null };
  updateGo();
  try {
    $("status").textContent = "uploading";
    $("progress").value = 0;
    $("job").hidden = false;
    const model = $("model").value;
    const body = {
      prompt: $("prompt").value,
      image: await upload(state.photo),
      duration: Number($("duration").value),
      seed: Number($("seed").value),
      ...(await extraInputs()),
    };
    showCode(model, body);
    const created = await api(`/api/v3/${model}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    state.running.id = created.id;
    $("cancel").hidden = false;
    await follow(created.id, show);
    loadHistory();
  } catch (err) {
    showError(err.message);
  } finally {
    state.running = null;
    $("cancel").hidden = true;
    updateGo();
  }
}

async function cancel() {
  const id = state.running && state.running.id;
  if (!id) return;
  try {
    // WaveSpeed has no cancel; the RunComfy dialect's works on every prediction.
    await api(`/v1/requests/${id}/cancel`, { method: "POST" });
  } catch (err) {
    showError(err.message);
  }
}

// -- the request as code ---------------------------------------------------------------

function showCode(model, body) {
  const base = window.location.origin;
  const json = JSON.stringify(body, null, 2);
  $("code-curl").textContent = [
    `curl -X POST "${base}/api/v3/${model}" \\`,
    '  -H "Authorization: Bearer $I2V_API_KEY" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d '${json.replaceAll("'", "'\\''")}'`,
  ].join("\n");
  $("code-python").textContent = [
    "import os",
    "",
    "import wavespeed",
    "",
    `client = wavespeed.Client(api_key=os.environ["I2V_API_KEY"], base_url=${JSON.stringify(base)})`,
    `output = client.run(${JSON.stringify(model)}, ${pythonLiteral(body)})`,
    'print(output["outputs"][0])',
  ].join("\n");
  $("code-js").textContent = [
    'import { Client } from "wavespeed";',
    "",
    `const client = new Client(process.env.I2V_API_KEY, { baseUrl: ${JSON.stringify(base)} });`,
    `const output = await client.run(${JSON.stringify(model)}, ${json});`,
    'console.log(output["outputs"][0]);',
  ].join("\n");
  $("code").hidden = false;
}

// JSON is Python but for its constants.
function pythonLiteral(value) {
  return JSON.stringify(value, null, 4)
    .replace(/^(\s*"[^"]*": )true(,?)$/gm, "$1True$2")
    .replace(/^(\s*"[^"]*": )false(,?)$/gm, "$1False$2")
    .replace(/^(\s*"[^"]*": )null(,?)$/gm, "$1None$2");
}

async function copy(id, button) {
  const text = $(id).textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (err) {
    // No clipboard (an insecure origin): select the text for the user to copy.
    const range = document.createRange();
    range.selectNodeContents($(id));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    button.textContent = "Selected";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

// -- history ---------------------------------------------------------------------------

async function loadHistory() {
  try {
    const page = await api("/api/v3/predictions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ page: 1, page_size: 10 }),
    });
    $("history").replaceChildren(...page.items.map((p) => {
      const item = document.createElement("li");
      if (p.outputs.length) {
        // The first frame as a poster: the browser fetches only the start of the file.
        const poster = document.createElement("video");
        poster.preload = "metadata";
        poster.muted = true;
        poster.src = `${p.outputs[0]}#t=0.1`;
        const link = Object.assign(document.createElement("a"), { href: p.outputs[0] });
        link.append(poster);
        item.append(link);
      }
      item.append(`${p.created_at} ${p.model}, seed ${p.seed}: ${p.status}`);
      return item;
    }));
  } catch (err) {
    // The list is a convenience; errors already show for the main actions.
  }
}

// -- wiring ----------------------------------------------------------------------------

$("photo").addEventListener("change", () => takePhoto($("photo").files[0]));
$("drop").addEventListener("dragover", (event) => {
  event.preventDefault();
  $("drop").classList.add("over");
});
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) takePhoto(file);
});
$("prompt").addEventListener("input", countPrompt);
$("seed-random").addEventListener("click", () => { $("seed").value = -1; });
$("seed-reuse").addEventListener("click", () => {
  if (state.lastSeed !== null) $("seed").value = state.lastSeed;
});
$("key").addEventListener("change", loadModels);
$("remember").addEventListener("change", storeKey);
$("model").addEventListener("change", pickModel);
$("generate").addEventListener("submit", generate);
$("cancel").addEventListener("click", cancel);
$("copy-curl").addEventListener("click", (e) => copy("code-curl", e.target));
$("copy-python").addEventListener("click", (e) => copy("code-python", e.target));
$("copy-js").addEventListener("click", (e) => copy("code-js", e.target));
restoreKey();
countPrompt();
loadModels();
