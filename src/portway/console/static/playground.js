// The playground: a chat through Portway's own /v1/chat/completions with the console session.
// The session cookie goes along (same origin) and the CSRF header proves the page sent it.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="portway-csrf"]').content;
  var settings = document.getElementById("playground-form");
  var composer = document.getElementById("pg-composer");
  var input = document.getElementById("pg-input");
  var box = document.getElementById("pg-messages");
  var meta = document.getElementById("pg-meta");
  var send = document.getElementById("pg-send");
  var history = [];

  function bubble(role, text) {
    var empty = box.querySelector(".empty-chat");
    if (empty) empty.remove();
    var el = document.createElement("div");
    el.className = "msg " + role;
    el.setAttribute("data-role", role);
    var body = document.createElement("div");
    body.className = "text";
    body.textContent = text || "";
    el.appendChild(body);
    box.appendChild(el);
    box.scrollTop = box.scrollHeight;
    return el;
  }

  function showToolCalls(el, calls) {
    el.querySelectorAll(".tool-call").forEach(function (old) { old.remove(); });
    calls.forEach(function (call) {
      if (!call) return;
      var div = document.createElement("div");
      div.className = "tool-call";
      div.textContent = "tool call " + (call.function.name || "") + "(" + (call.function.arguments || "") + ")";
      el.appendChild(div);
    });
  }

  function buildRequest() {
    var f = settings.elements;
    var messages = [];
    if (f.system.value.trim()) messages.push({ role: "system", content: f.system.value.trim() });
    var body = { model: f.model.value, messages: messages.concat(history) };
    if (f.max_tokens.value) body.max_tokens = parseInt(f.max_tokens.value, 10);
    if (f.temperature.value !== "") body.temperature = parseFloat(f.temperature.value);
    if (f.json_mode.checked) body.response_format = { type: "json_object" };
    if (f.tools.value.trim()) body.tools = JSON.parse(f.tools.value);
    if (f.stream.checked) { body.stream = true; body.stream_options = { include_usage: true }; }
    return body;
  }

  function describeError(payload, status) {
    var error = payload && payload.error;
    return "Error " + status + ": " + (error ? error.message : "request failed");
  }

  async function readStream(response, el) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "", text = "", calls = [], usage = null;
    var textEl = el.querySelector(".text");
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      buffer += decoder.decode(step.value, { stream: true });
      var events = buffer.split("\n\n");
      buffer = events.pop();
      events.forEach(function (event) {
        event.split("\n").forEach(function (line) {
          if (line.indexOf("data: ") !== 0) return;
          var data = line.slice(6);
          if (data === "[DONE]") return;
          var chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          (chunk.choices || []).forEach(function (choice) {
            var delta = choice.delta || {};
            if (delta.content) { text += delta.content; textEl.textContent = text; }
            (delta.tool_calls || []).forEach(function (part) {
              var call = calls[part.index] || (calls[part.index] = { id: part.id, type: "function", function: { name: "", arguments: "" } });
              if (part.function && part.function.name) call.function.name += part.function.name;
              if (part.function && part.function.arguments) call.function.arguments += part.function.arguments;
            });
            if (calls.length) showToolCalls(el, calls);
          });
          box.scrollTop = box.scrollHeight;
        });
      });
    }
    return { content: text, tool_calls: calls.filter(Boolean), usage: usage };
  }

  async function submit(event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var body;
    history.push({ role: "user", content: text });
    try { body = buildRequest(); } catch (err) {
      history.pop();
      bubble("error", "Tools must be a JSON array: " + err.message);
      return;
    }
    bubble("user", text);
    input.value = "";
    send.disabled = true;
    var el = bubble("assistant", "");
    el.classList.add("pending");
    var started = performance.now();
    try {
      var response = await fetch("/v1/chat/completions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-portway-csrf": csrf },
        body: JSON.stringify(body),
      });
      var result;
      if (!response.ok) {
        var payload = null;
        try { payload = await response.json(); } catch (ignored) { payload = null; }
        throw new Error(describeError(payload, response.status));
      }
      if (body.stream) {
        result = await readStream(response, el);
      } else {
        var json = await response.json();
        var message = json.choices[0].message;
        result = { content: message.content || "", tool_calls: message.tool_calls || [], usage: json.usage };
        el.querySelector(".text").textContent = result.content;
        if (result.tool_calls.length) showToolCalls(el, result.tool_calls);
      }
      var assistant = { role: "assistant", content: result.content || null };
      if (result.tool_calls.length) assistant.tool_calls = result.tool_calls;
      history.push(assistant);
      var seconds = ((performance.now() - started) / 1000).toFixed(2);
      var usage = result.usage;
      meta.textContent = body.model + " · " + seconds + " s" + (usage ? " · " + usage.prompt_tokens + " in / " + usage.completion_tokens + " out tokens" : "") + " · request " + (response.headers.get("x-request-id") || "");
      el.setAttribute("data-done", "true");
    } catch (err) {
      history.pop();
      el.remove();
      bubble("error", err.message);
    } finally {
      el.classList.remove("pending");
      send.disabled = false;
      input.focus();
    }
  }

  composer.addEventListener("submit", submit);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); composer.requestSubmit(); }
  });
  document.getElementById("pg-clear").addEventListener("click", function () {
    history = [];
    box.innerHTML = '<div class="empty-chat muted">Send a message to start.</div>';
    meta.textContent = "";
  });
})();
