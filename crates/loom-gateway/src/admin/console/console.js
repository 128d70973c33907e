// The Loom console: reads the admin API of the server it is served from, with the admin
// key kept in this tab (sessionStorage) when one is needed. Everything a client sent
// (user, team and key names) is put on the page as text, never as markup.
"use strict";

const KEY = "loom-admin-key";
const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#3b5bdb", "#2f9e44", "#e8590c", "#ae3ec9", "#1098ad", "#f08c00", "#d6336c", "#5c940d", "#845ef7", "#0b7285"];
const OTHER_COLOR = "#adb5bd";

const $ = (id) => document.getElementById(id);

let session = null;
let inFlight = null;

function adminKey() {
  return sessionStorage.getItem(KEY);
}

function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  const key = adminKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

class Unauthorized extends Error {}

// Calls the admin API; the answer's JSON, or an error carrying the API's message.
async function api(path, options) {
  const init = Object.assign({}, options);
  init.headers = authHeaders(init.body ? { "Content-Type": "application/json" } : {});
  const response = await fetch(path, init);
  const body = await response.json().catch(() => null);
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) {
    const message = body && body.error && body.error.message;
    throw new Error(message || `${path}: HTTP ${response.status}`);
  }
  return body;
}

// Formatting.

function formatCount(value) {
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)}B`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  // Axis ticks halve small counts: 0.5 must not read as 1.
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function formatCost(value) {
  if (value === 0) return "$0";
  // Three significant digits for small sums: one request often costs a fraction of a cent.
  if (value < 0.01) return `$${Number(value.toPrecision(3))}`;
  if (value < 100) return `$${value.toFixed(4)}`;
  return `$${value.toFixed(2)}`;
}

function formatPercent(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : "–";
}

function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = String(content);
  return node;
}

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = String(value);
  if (className) td.className = className;
  return td;
}

// Charts: stacked bars over time, drawn as SVG.

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// `layers`: [{name, color, values}] with one value per bucket start in `starts`.
function stackedBars(container, starts, layers, format) {
  const width = 720, height = 200, left = 64, right = 8, top = 10, bottom = 24;
  const svg = svgNode("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars" });
  const totals = starts.map((_, index) => layers.reduce((sum, layer) => sum + layer.values[index], 0));
  const max = Math.max(...totals, 0);
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const step = plotWidth / Math.max(starts.length, 1);
  const scale = max > 0 ? plotHeight / max : 0;
  for (const fraction of max > 0 ? [0, 0.5, 1] : [0]) {
    const y = top + plotHeight - fraction * plotHeight;
    svg.appendChild(svgNode("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
    svg.appendChild(svgNode("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(fraction * max)));
  }
  starts.forEach((start, index) => {
    let y = top + plotHeight;
    for (const layer of layers) {
      const value = layer.values[index];
      if (!(value > 0)) continue;
      const barHeight = Math.max(value * scale, 1);
      y -= barHeight;
      const bar = svgNode("rect", {
        x: left + index * step + step * 0.1, y, width: Math.max(step * 0.8, 1), height: barHeight, fill: layer.color,
      });
      bar.appendChild(svgNode("title", {}, `${layer.name} ${formatTime(start)}: ${format(value)}`));
      svg.appendChild(bar);
    }
  });
  const labels = starts.length > 1 ? [0, Math.floor((starts.length - 1) / 2), starts.length - 1] : [0];
  for (const index of labels) {
    if (starts[index] === undefined) continue;
    // The first and last labels align to the plot's edges, so neither is cut off.
    const anchor = index === 0 ? "start" : index === starts.length - 1 ? "end" : "middle";
    const x = anchor === "start" ? left : anchor === "end" ? width - right : left + index * step + step / 2;
    svg.appendChild(svgNode("text", { x, y: height - 6, "text-anchor": anchor, class: "axis" }, formatTime(starts[index])));
  }
  const legend = el("div", "legend");
  for (const layer of layers) {
    const item = el("span", "legend-item");
    const swatch = svgNode("svg", { width: 10, height: 10, class: "swatch" });
    swatch.appendChild(svgNode("rect", { width: 10, height: 10, fill: layer.color }));
    item.append(swatch, document.createTextNode(layer.name));
    legend.appendChild(item);
  }
  if (max === 0) legend.appendChild(el("span", "muted", "nothing in this range yet"));
  container.replaceChildren(svg, legend);
}

// Series: the admin API's sparse points as one value per bucket.

function bucketStarts(report) {
  const width = report.bucket_seconds * 1000;
  const from = Date.parse(report.from), to = Date.parse(report.to);
  const starts = [];
  for (let start = from - (((from % width) + width) % width); start < to; start += width) starts.push(start);
  return starts;
}

function valuesOf(group, starts, measure) {
  const byStart = new Map(group.points.map((point) => [point.start_ms, point]));
  return starts.map((start) => {
    const point = byStart.get(start);
    return point ? measure(point) : 0;
  });
}

// Sums over every group, one value per bucket.
function summed(report, starts, measure) {
  const values = starts.map(() => 0);
  for (const group of report.series) {
    valuesOf(group, starts, measure).forEach((value, index) => (values[index] += value));
  }
  return values;
}

const MEASURES = {
  requests: { of: (t) => t.requests, format: formatCount },
  tokens: { of: (t) => t.input_tokens + t.output_tokens, format: formatCount },
  cost: { of: (t) => t.cost, format: formatCost },
};

// Rendering.

function renderSummary(report) {
  const sum = { requests: 0, input_tokens: 0, output_tokens: 0, cost: 0, errors: 0, cache_hits: 0, saved_cost: 0,
    rate_limited: 0, over_budget: 0, guard_blocked: 0, guard_flagged: 0 };
  for (const group of report.series) for (const name of Object.keys(sum)) sum[name] += group.totals[name] || 0;
  const tiles = [
    ["requests", formatCount(sum.requests)],
    ["tokens", formatCount(sum.input_tokens + sum.output_tokens)],
    ["cost", formatCost(sum.cost)],
    ["errors", formatPercent(sum.errors, sum.requests)],
    ["cache hits", formatPercent(sum.cache_hits, sum.requests)],
    ["saved by the cache", formatCost(sum.saved_cost)],
    ["blocked by checks", formatCount(sum.guard_blocked)],
    ["rate-limited", formatCount(sum.rate_limited + sum.over_budget)],
  ];
  $("summary").replaceChildren(...tiles.map(([label, value]) => {
    const tile = el("div", "tile");
    tile.dataset.tile = label;
    tile.append(el("div", "tile-value", value), el("div", "tile-label", label));
    return tile;
  }));
}

function renderProviders(providers) {
  const body = $("providers").tBodies[0];
  body.replaceChildren();
  for (const provider of providers) {
    const row = body.insertRow();
    row.dataset.provider = provider.name;
    cell(row, provider.name);
    cell(row, provider.status, provider.status === "healthy" ? "ok" : provider.status === "degraded" ? "warn" : "bad");
    const breaker = provider.breaker.state;
    cell(row, breaker, breaker === "closed" ? "ok" : breaker === "open" ? "bad" : "warn");
    cell(row, provider.requests);
    cell(row, provider.failures);
    const rate = provider.requests ? provider.failures / provider.requests : 0;
    const rateCell = cell(row, `${(100 * rate).toFixed(1)}%`);
    const meter = el("meter");
    meter.min = 0; meter.max = 1; meter.low = 0.05; meter.high = 0.2; meter.optimum = 0; meter.value = rate;
    rateCell.prepend(meter);
    cell(row, `${provider.avg_latency_ms} ms`);
  }
}

function renderUsage(report, starts) {
  const measure = MEASURES[$("measure").value];
  const layers = report.series.map((group, index) => ({
    name: group.group,
    color: group.group === "(other)" ? OTHER_COLOR : PALETTE[index % PALETTE.length],
    values: valuesOf(group, starts, measure.of),
  }));
  stackedBars($("usage-chart"), starts, layers, measure.format);
  $("group-heading").textContent = report.group_by;
  const body = $("usage-groups").tBodies[0];
  body.replaceChildren();
  for (const [index, group] of report.series.entries()) {
    const row = body.insertRow();
    row.dataset.group = group.group;
    const swatch = row.insertCell();
    swatch.appendChild(el("span", "dot")).style.background = layers[index].color;
    cell(row, group.group);
    cell(row, formatCount(group.totals.requests), "num");
    cell(row, formatCount(group.totals.input_tokens), "num");
    cell(row, formatCount(group.totals.output_tokens), "num");
    cell(row, formatCost(group.totals.cost), "num cost");
    cell(row, formatCount(group.totals.errors), "num");
  }
}

function renderCache(report, starts, stats) {
  if (stats && stats.enabled) {
    const s = stats.stats;
    $("cache-summary").textContent =
      `${s.entries} entries, ${formatCount(s.memory_bytes)} bytes of ${formatCount(s.max_bytes)}; ` +
      `hit rate since start ${formatPercent(s.hits + s.semantic_hits, s.hits + s.semantic_hits + s.misses)}`;
  } else {
    $("cache-summary").textContent = "No route caches answers (routes[].cache).";
  }
  const hits = summed(report, starts, (t) => t.cache_hits);
  const all = summed(report, starts, (t) => t.requests);
  stackedBars($("cache-chart"), starts, [
    { name: "cache hits", color: PALETTE[1], values: hits },
    { name: "answered by providers", color: OTHER_COLOR, values: all.map((count, index) => count - hits[index]) },
  ], formatCount);
}

function renderGuard(report, starts) {
  stackedBars($("guard-chart"), starts, [
    { name: "blocked by checks", color: "#c53030", values: summed(report, starts, (t) => t.guard_blocked) },
    { name: "flagged or redacted", color: "#f08c00", values: summed(report, starts, (t) => t.guard_flagged) },
    { name: "rate-limited", color: "#845ef7", values: summed(report, starts, (t) => t.rate_limited) },
    { name: "over budget", color: "#1098ad", values: summed(report, starts, (t) => t.over_budget) },
  ], formatCount);
}

function renderKeys(keys) {
  const body = $("keys").tBodies[0];
  body.replaceChildren();
  for (const key of keys) {
    const row = body.insertRow();
    row.dataset.key = key.id;
    cell(row, key.id);
    cell(row, key.name || "");
    cell(row, key.user || "");
    cell(row, key.team || "");
    cell(row, key.source);
    cell(row, key.revoked ? "revoked" : "live", key.revoked ? "bad" : "ok");
    const actions = row.insertCell();
    if (key.source === "api" && !key.revoked) {
      const revoke = el("button", "danger", "Revoke");
      revoke.addEventListener("click", () => revokeKey(key.id));
      actions.appendChild(revoke);
    }
  }
}

function showKeysError(error) {
  $("keys-error").hidden = !error;
  $("keys-error").textContent = error ? error.message : "";
}

async function revokeKey(id) {
  if (!window.confirm(`Revoke key ${id}? Requests with it are refused from then on.`)) return;
  try {
    await api(`/ai/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
    showKeysError(null);
  } catch (error) {
    showKeysError(error);
  }
  await refresh();
}

async function createKey(event) {
  event.preventDefault();
  const body = {};
  for (const field of ["name", "user", "team"]) {
    const value = $(`new-key-${field}`).value.trim();
    if (value) body[field] = value;
  }
  try {
    const created = await api("/ai/keys", { method: "POST", body: JSON.stringify(body) });
    $("created-key-id").textContent = created.id;
    $("created-key-value").textContent = created.key;
    $("created-key").hidden = false;
    $("create-key-form").reset();
    showKeysError(null);
  } catch (error) {
    showKeysError(error);
  }
  await refresh();
}

// Session and refresh.

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("console").hidden = !signedIn;
  $("range-picker").hidden = !signedIn;
  $("sign-out").hidden = !(signedIn && adminKey());
}

// Whether this tab may read the admin API; asked without a 401, so a visitor who has not
// signed in sees the form and no error.
async function checkSession() {
  const response = await fetch("/console/session", { headers: authHeaders({}) });
  if (!response.ok) throw new Error(`/console/session: HTTP ${response.status}`);
  session = await response.json();
  return session.signed_in;
}

// One load at a time: a refresh asked for during one joins it.
function refresh() {
  if (!inFlight) inFlight = load().finally(() => (inFlight = null));
  return inFlight;
}

async function load() {
  try {
    if (!session || !session.signed_in) {
      if (!(await checkSession())) {
        show(false);
        $("status").textContent = "signed out";
        return;
      }
    }
    const range = Number($("range").value);
    const to = new Date();
    const from = new Date(to.getTime() - range * 1000);
    const query = new URLSearchParams({ group_by: $("group-by").value, from: from.toISOString(), to: to.toISOString(), limit: "8" });
    const [providers, report, cache, keys] = await Promise.all([
      api("/ai/providers"),
      api(`/ai/usage/series?${query}`),
      api("/ai/cache"),
      session.keys ? api("/ai/keys") : Promise.resolve(null),
    ]);
    show(true);
    const starts = bucketStarts(report);
    renderSummary(report);
    renderProviders(providers.providers);
    renderUsage(report, starts);
    renderCache(report, starts, cache);
    renderGuard(report, starts);
    $("keys-on").hidden = !keys;
    $("keys-off").hidden = Boolean(keys);
    if (keys) renderKeys(keys.data);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error instanceof Unauthorized) {
      session = null;
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
    await inFlight; // a load started before the key was given must not answer for it
    session = null;
    await refresh();
    const refused = Boolean(session) && !session.signed_in;
    if (refused) sessionStorage.removeItem(KEY);
    $("sign-in-error").hidden = !refused;
    $("sign-in-error").textContent = refused ? "That key was refused." : "";
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    session = null;
    // A key created in this tab is not left on the page for whoever uses it next.
    $("created-key").hidden = true;
    $("created-key-id").textContent = "";
    $("created-key-value").textContent = "";
    show(false);
    $("status").textContent = "signed out";
  });
  $("create-key-form").addEventListener("submit", createKey);
  for (const control of ["range", "measure", "group-by"]) $(control).addEventListener("change", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
