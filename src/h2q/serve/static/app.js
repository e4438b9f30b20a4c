// The page of `h2q serve`: one query, the top k under each served index, side by side.
"use strict";

const state = { indexes: [], items: { kind: null, labels: false }, ntotal: 0 };
const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function asSet(label) {
  if (label === null || label === undefined) return null;
  return new Set(Array.isArray(label) ? label : [label]);
}

function relevant(querySet, label) {
  const other = asSet(label);
  if (!querySet || !other) return null;
  for (const c of other) if (querySet.has(c)) return true;
  return false;
}

function itemCell(id, score, isRelevant) {
  const cell = document.createElement("div");
  cell.className = "result" + (isRelevant === false ? " other" : "");
  cell.dataset.id = id;
  if (state.items.kind === "image") {
    const img = document.createElement("img");
    img.src = `/api/items/${id}/image`;
    img.alt = `item ${id}`;
    cell.appendChild(img);
  } else if (state.items.kind === "text") {
    const text = document.createElement("div");
    text.className = "text";
    text.dataset.id = id;
    cell.appendChild(text);
    getJSON(`/api/items/${id}`).then((item) => { text.textContent = item.text; });
  }
  const caption = document.createElement("div");
  caption.innerHTML = `#${id} <span class="dist">d=${Number(score).toFixed(Number.isInteger(score) ? 0 : 3)}</span>`;
  cell.appendChild(caption);
  return cell;
}

function renderRow(index, result, querySet, k) {
  const row = document.createElement("div");
  row.className = "row";
  row.dataset.index = index.name;
  const head = document.createElement("div");
  head.className = "row-head";
  const hits = result.labels ? result.labels.map((l) => relevant(querySet, l)) : [];
  const known = hits.filter((h) => h !== null);
  const precision = known.length ? known.filter(Boolean).length / k : null;
  head.innerHTML = `<h2></h2><span class="desc"></span>` +
    `<span class="precision">${precision === null ? "" : `precision@${k} ${precision.toFixed(2)}`}</span>` +
    `<span class="latency">${result.took_ms.toFixed(1)} ms (server), ${result.client_ms.toFixed(1)} ms (page)</span>`;
  head.querySelector("h2").textContent = index.name;
  head.querySelector(".desc").textContent = `${index.description} · ${index.n_bits} bits · ${index.scoring}`;
  row.appendChild(head);
  const list = document.createElement("div");
  list.className = "results" + (state.items.kind === "text" ? " texts" : "");
  result.ids.forEach((id, j) => list.appendChild(itemCell(id, result.scores[j], hits[j])));
  row.appendChild(list);
  return row;
}

async function renderQuery(id) {
  const box = $("query");
  box.innerHTML = "";
  const item = await getJSON(`/api/items/${id}`);
  if (state.items.kind === "image") {
    const img = document.createElement("img");
    img.className = "big";
    img.src = `/api/items/${id}/image`;
    img.alt = `query item ${id}`;
    box.appendChild(img);
  }
  const text = document.createElement("div");
  const names = item.class_names ? item.class_names.join(", ") : (item.label ?? "no label");
  text.innerHTML = `<strong>query: item #${id}</strong><br>class: <span id="query-class"></span>`;
  box.appendChild(text);
  $("query-class").textContent = names;
  if (item.text) {
    const t = document.createElement("p");
    t.textContent = item.text;
    text.appendChild(t);
  }
  return asSet(item.label);
}

async function search(id, k) {
  setStatus(`searching for item ${id}...`);
  const querySet = await renderQuery(id);
  const rows = $("rows");
  const results = await Promise.all(state.indexes.map(async (index) => {
    const start = performance.now();
    const body = await getJSON("/api/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ index: index.name, id, k }),
    });
    const result = body.results[0];
    result.took_ms = body.took_ms;
    result.client_ms = performance.now() - start;
    return result;
  }));
  rows.innerHTML = "";
  state.indexes.forEach((index, i) => rows.appendChild(renderRow(index, results[i], querySet, k)));
  setStatus(`top ${k} of item ${id} under ${state.indexes.length} index(es) of ${state.ntotal} items`);
  document.body.dataset.ready = "yes";
}

function readInputs() {
  const id = Number($("item-id").value);
  const k = Number($("k").value);
  if (!Number.isInteger(id) || id < 0 || id >= state.ntotal) {
    throw new Error(`item id must be an integer from 0 to ${state.ntotal - 1}`);
  }
  if (!Number.isInteger(k) || k < 1 || k > Math.min(100, state.ntotal)) {
    throw new Error(`k must be an integer from 1 to ${Math.min(100, state.ntotal)}`);
  }
  return { id, k };
}

function run() {
  let inputs;
  try { inputs = readInputs(); } catch (e) { setStatus(e.message, true); return; }
  search(inputs.id, inputs.k).catch((e) => setStatus(e.message, true));
}

async function start() {
  const info = await getJSON("/api/indexes");
  state.indexes = info.indexes;
  state.items = info.items;
  state.ntotal = info.indexes.length ? info.indexes[0].ntotal : 0;
  $("title").textContent = info.title;
  document.title = info.title;
  $("item-id").max = state.ntotal - 1;
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); run(); });
  $("random").addEventListener("click", () => {
    $("item-id").value = Math.floor(Math.random() * state.ntotal);
    run();
  });
  setStatus(`${state.indexes.length} index(es) of ${state.ntotal} items; pick a query`);
}

start().catch((e) => setStatus(`cannot load the index list: ${e.message}`, true));
