// The sketcher page: talks to /v1/sketches with the console's session (cookie + CSRF
// token) when signed in, else with the key the person typed (no CDN, no build).
"use strict";

const FORMATS = [
  ["svg", "SVG"], ["png", "PNG"], ["mermaid", "Mermaid flowchart"],
  ["architecture", "Mermaid architecture-beta"], ["dot", "Graphviz DOT"], ["d2", "D2"],
  ["drawio", "draw.io"], ["json", "Graph JSON"], ["markdown", "Design doc (Markdown)"],
];
const FINAL = new Set(["completed", "failed", "awaiting_answers"]);
const $ = (id) => document.getElementById(id);
const state = { sketch: null, selected: null, version: null, polling: false };

const CSRF = document.querySelector('meta[name="portway-csrf"]');

function headers(json) {
  const h = {};
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  else if (CSRF) h["x-portway-csrf"] = CSRF.content;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

function setStatus(sketch) {
  const busy = sketch && !FINAL.has(sketch.status);
  $("status").className = busy ? "spinner" : "";
  $("status").textContent = sketch
    ? `${sketch.id} · ${sketch.status}${sketch.stage ? " · " + sketch.stage : ""}` +
      (sketch.version ? ` · version ${sketch.version}` : "")
    : "";
  $("generate").disabled = Boolean(busy);
  $("revise").disabled = Boolean(busy) || !sketch || !sketch.version;
}

async function poll(id) {
  state.polling = true;
  try {
    for (;;) {
      const sketch = await (await api("GET", `/v1/sketches/${id}`)).json();
      state.sketch = sketch;
      setStatus(sketch);
      if (FINAL.has(sketch.status)) { await show(sketch); return; }
      await new Promise((r) => setTimeout(r, 700));
    }
  } finally { state.polling = false; }
}

async function show(sketch) {
  if (sketch.error) showError(new Error(sketch.error.message));
  if (sketch.status === "awaiting_answers") {
    $("questions").hidden = false;
    $("question-list").replaceChildren(...sketch.questions.map((q, i) => {
      const li = document.createElement("li");
      const input = document.createElement("input");
      input.dataset.index = i; input.size = 50;
      li.append(q, document.createElement("br"), input);
      return li;
    }));
    return;
  }
  $("questions").hidden = true;
  if (!sketch.version) return;
  state.version = sketch.version;
  await drawVersion(sketch.version);
  const answer = sketch.last_answer;
  $("answer").hidden = !answer;
  $("answer").textContent = answer || "";
  $("versions").replaceChildren(...Array.from({ length: sketch.version }, (_, i) => {
    const option = document.createElement("option");
    option.value = String(i + 1); option.textContent = "version " + (i + 1);
    option.selected = i + 1 === sketch.version;
    return option;
  }));
  $("downloads").replaceChildren(...FORMATS.map(([format, label]) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.textContent = label; link.dataset.format = format;
    link.addEventListener("click", () => download(format).catch(showError));
    li.append(link);
    return li;
  }));
}

async function drawVersion(number) {
  const id = state.sketch.id;
  const svg = await (await api("GET", `/v1/sketches/${id}/export/svg?version=${number}`)).text();
  const parsed = new DOMParser().parseFromString(svg, "image/svg+xml").documentElement;
  $("diagram").replaceChildren(document.importNode(parsed, true));
  const version = await (await api("GET", `/v1/sketches/${id}/versions/${number}`)).json();
  state.graph = version.graph;
  $("design").textContent = version.documents[0] ? version.documents[0].content : "";
  for (const node of $("diagram").querySelectorAll("g.node")) {
    node.addEventListener("click", () => select(node.dataset.nodeId));
  }
  if (state.selected) select(state.selected);
}

function select(nodeId) {
  const node = (state.graph.nodes || []).find((n) => n.id === nodeId);
  state.selected = node ? nodeId : null;
  for (const g of $("diagram").querySelectorAll("g.node")) {
    g.classList.toggle("selected", g.dataset.nodeId === state.selected);
  }
  $("node-title").textContent = node ? node.label : "Click a component";
  const rows = node ? [["id", node.id], ["kind", node.kind], ["technology", node.technology],
    ["tier", node.group], ["does", node.responsibility], ["scaling", node.scaling]] : [];
  $("node-details").replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
}

async function download(format) {
  const id = state.sketch.id;
  const version = $("versions").value || state.version;
  const response = await api("GET", `/v1/sketches/${id}/export/${format}?version=${version}&download=1`);
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : "sketch." + format;
  document.body.append(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

$("generate").addEventListener("click", async () => {
  showError(null);
  const description = $("description").value.trim();
  if (!description) { showError(new Error("Type a description first.")); return; }
  const body = { description, options: { clarify: $("clarify").checked } };
  if ($("model").value.trim()) body.model = $("model").value.trim();
  try {
    state.selected = null;
    const sketch = await (await api("POST", "/v1/sketches", body)).json();
    state.sketch = sketch; setStatus(sketch);
    await poll(sketch.id);
  } catch (error) { showError(error); setStatus(state.sketch); }
});

$("send-answers").addEventListener("click", async () => {
  showError(null);
  const answers = Array.from($("question-list").querySelectorAll("input")).map((i) => i.value || "no preference");
  try {
    await api("POST", `/v1/sketches/${state.sketch.id}/answers`, { answers });
    $("questions").hidden = true;
    await poll(state.sketch.id);
  } catch (error) { showError(error); }
});

$("revise").addEventListener("click", async () => {
  showError(null);
  const message = $("revise-message").value.trim();
  if (!message || !state.sketch) return;
  const body = { message };
  if (state.selected) body.node_id = state.selected;
  try {
    await api("POST", `/v1/sketches/${state.sketch.id}/revise`, body);
    $("revise-message").value = "";
    await poll(state.sketch.id);
  } catch (error) { showError(error); }
});

$("versions").addEventListener("change", () => drawVersion($("versions").value).catch(showError));
if (CSRF) $("api-key").closest("label").hidden = true;  // signed in: the session is the key
$("api-key").value = sessionStorage.getItem("portway.sketch.key") || "";
$("api-key").addEventListener("change", () => sessionStorage.setItem("portway.sketch.key", $("api-key").value.trim()));
