// The API reference, drawn from /openapi.json by this server's own script (no CDN): every
// operation with its method, path, summary, description and whether it needs a key.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function draw() {
  const root = document.getElementById("operations");
  const response = await fetch("/openapi.json");
  if (!response.ok) {
    root.append(el("p", `Could not load /openapi.json (HTTP ${response.status}).`));
    return;
  }
  const spec = await response.json();
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const section = el("section", undefined, "operation");
      const head = el("h2");
      head.append(el("span", method.toUpperCase(), "method"), " ", el("code", path));
      if (op.security) head.append(" ", el("span", "key", "key"));
      section.append(head);
      if (op.summary) section.append(el("p", op.summary, "summary"));
      if (op.description) section.append(el("pre", op.description, "description"));
      root.append(section);
    }
  }
}

draw();
