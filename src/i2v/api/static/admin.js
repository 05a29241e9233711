// The operator page: polls GET /api/admin/overview with an admin key and fills the tables.
// Data goes in through textContent only: errors and routes are never parsed as HTML.
"use strict";

const KEY_ITEM = "i2v.adminKey";
// An admin key sees every key's work: it stays with this tab (sessionStorage) and goes
// when the tab closes, never on the device. Copies older pages left on the device go now.
localStorage.removeItem(KEY_ITEM);
const POLL_MS = 5000;
let timer = null;

const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(tableId, items, render) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const item of items) render(body.insertRow(), item);
  if (!items.length) {
    const row = body.insertRow();
    const td = cell(row, "none");
    td.colSpan = $(tableId).tHead.rows[0].cells.length;
  }
}

function show(data) {
  $("queued-total").textContent = `(${data.queued_total} queued)`;
  $("hour-total").textContent = `(${data.last_hour_total} finished)`;
  fill("queue", data.queue, (row, q) => {
    cell(row, q.route);
    cell(row, q.queued, "num");
  });
  fill("running", data.running, (row, r) => {
    cell(row, r.id);
    cell(row, r.route);
    cell(row, r.key_id);
    cell(row, r.worker);
    cell(row, r.attempt, "num");
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = r.progress;
    bar.title = r.message;
    cell(row, "").append(bar, ` ${Math.round(r.progress * 100)}%`);
    cell(row, r.running_s === null ? "" : `${r.running_s} s`, "num");
  });
  fill("hour", data.last_hour, (row, h) => {
    cell(row, h.route);
    cell(row, h.succeeded, "num");
    cell(row, h.failed, "num");
    cell(row, h.cancelled, "num");
  });
  fill("failures", data.failures, (row, f) => {
    cell(row, f.finished_at);
    cell(row, f.id);
    cell(row, f.route);
    cell(row, f.key_id);
    cell(row, f.attempts, "num");
    cell(row, f.error, "error");
  });
}

function status(text, bad) {
  $("status").textContent = text;
  $("status").className = bad ? "bad" : "";
}

async function refresh() {
  const key = sessionStorage.getItem(KEY_ITEM);
  if (!key) {
    status("Enter an admin key.", false);
    return;
  }
  try {
    const r = await fetch("/api/admin/overview", { headers: { Authorization: `Bearer ${key}` } });
    const body = await r.json();
    if (!r.ok) {
      status(body.message || `HTTP ${r.status}`, true);
      return;
    }
    show(body.data);
    status(`Updated ${new Date().toLocaleTimeString()}; every ${POLL_MS / 1000} s.`, false);
  } catch (err) {
    status(`The server does not answer: ${err}`, true);
  }
}

function start() {
  if (timer) clearInterval(timer);
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("use").addEventListener("click", () => {
    sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
    $("key").value = "";
    start();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    status("Key forgotten.", false);
  });
  start();
});
