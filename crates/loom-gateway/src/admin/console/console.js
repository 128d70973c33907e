// The Loom console: reads the admin API of the server it is served from, with the admin
// key kept in this tab (sessionStorage) when one is needed.
"use strict";

const KEY = "loom-admin-key";
const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);

function adminKey() {
  return sessionStorage.getItem(KEY);
}

// GET `path` as JSON; a 401 shows the sign-in form.
async function api(path) {
  const headers = {};
  const key = adminKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { headers });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

class Unauthorized extends Error {}

function text(value) {
  return document.createTextNode(String(value));
}

function cell(row, value, className) {
  const td = row.insertCell();
  td.appendChild(text(value));
  if (className) td.className = className;
}

function renderProviders(providers) {
  const body = $("providers").tBodies[0];
  body.replaceChildren();
  for (const provider of providers) {
    const row = body.insertRow();
    row.dataset.provider = provider.name;
    cell(row, provider.name);
    cell(row, provider.status, provider.status === "healthy" ? "ok" : "bad");
    const breaker = provider.breaker.state;
    cell(row, breaker, breaker === "closed" ? "ok" : breaker === "open" ? "bad" : "warn");
    cell(row, provider.requests);
    cell(row, provider.failures);
    const rate = provider.requests ? (100 * provider.failures) / provider.requests : 0;
    cell(row, `${rate.toFixed(1)}%`);
    cell(row, `${provider.avg_latency_ms} ms`);
  }
}

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("console").hidden = !signedIn;
  $("sign-out").hidden = !(signedIn && adminKey());
}

async function refresh() {
  try {
    const { providers } = await api("/ai/providers");
    renderProviders(providers);
    show(true);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthorized) {
      show(false);
      $("status").textContent = "signed out";
    } else {
      $("status").textContent = `error: ${error.message}`;
    }
  }
}

function start() {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("admin-key").value);
    $("admin-key").value = "";
    await refresh();
    const failed = !$("sign-in").hidden;
    $("sign-in-error").hidden = !failed;
    $("sign-in-error").textContent = failed ? "That key was refused." : "";
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    show(false);
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
