"""The chat page served at `/`: one self-contained HTML file (inline CSS and JS, no external assets,
so it works offline). It keeps the conversation in the browser, streams each reply from
`/v1/chat/completions`, and shows the reasoning in a collapsible block above the answer: open while
the model thinks, folded when the answer starts. Earlier reasoning is not sent back with the
conversation (as DeepSeek's API asks).
"""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>r1zero chat: __TITLE__</title>
<style>
  :root { --fg:#1d232a; --muted:#6a737d; --bg:#f6f7f9; --card:#fff; --line:#dde1e6; --accent:#2f6feb; }
  * { box-sizing:border-box; }
  body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg);
         background:var(--bg); display:flex; flex-direction:column; height:100vh; }
  header { display:flex; gap:12px; align-items:center; flex-wrap:wrap; padding:10px 16px;
           background:var(--card); border-bottom:1px solid var(--line); }
  header h1 { font-size:16px; margin:0 12px 0 0; }
  header label { color:var(--muted); font-size:13px; }
  header input { width:70px; margin-left:4px; }
  #key { width:160px; }
  #log { flex:1; overflow-y:auto; padding:16px; display:flex; flex-direction:column; gap:12px; }
  .msg { max-width:820px; width:100%; margin:0 auto; padding:10px 14px; border-radius:10px;
         background:var(--card); border:1px solid var(--line); white-space:pre-wrap; word-wrap:break-word; }
  .msg.user { background:#e8f0fe; border-color:#c6d7fb; }
  .msg.error { background:#fdecea; border-color:#f5c2bd; color:#8a1c12; }
  .reasoning { color:var(--muted); font-size:13.5px; border-left:3px solid var(--line);
               padding-left:10px; margin-bottom:8px; }
  .reasoning summary { cursor:pointer; user-select:none; }
  .reasoning-text { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; }
  .usage { color:var(--muted); font-size:12px; margin-top:6px; }
  form { display:flex; gap:8px; padding:12px 16px; background:var(--card); border-top:1px solid var(--line); }
  textarea { flex:1; resize:none; height:58px; font:inherit; padding:8px; border:1px solid var(--line);
             border-radius:8px; }
  button { font:inherit; padding:0 18px; border:0; border-radius:8px; background:var(--accent); color:#fff;
           cursor:pointer; }
  button:disabled { opacity:.5; cursor:default; }
  #reset { background:#6a737d; }
</style></head>
<body>
<header>
  <h1>r1zero &middot; <span id="model">__TITLE__</span></h1>
  <label>temperature<input id="temperature" type="number" min="0" max="2" step="0.1" value="0.6"></label>
  <label>top-p<input id="top_p" type="number" min="0.01" max="1" step="0.05" value="0.95"></label>
  <label>max tokens<input id="max_tokens" type="number" min="1" step="1" placeholder="auto"></label>
  <label id="keylabel" hidden>API key<input id="key" type="password" autocomplete="off"></label>
</header>
<main id="log" aria-live="polite"></main>
<form id="form">
  <textarea id="input" placeholder="Ask something, e.g. 123+59=  (Enter sends, Shift+Enter: new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="reset" type="button" title="start a new conversation">New</button>
</form>
<script>
const MODEL = __MODEL__, NEEDS_KEY = __NEEDS_KEY__;
const $ = (id) => document.getElementById(id);
const log = $("log"), input = $("input"), send = $("send");
let history = [];
if (NEEDS_KEY) { $("keylabel").hidden = false; $("key").value = localStorage.getItem("r1zero-key") || ""; }

function bubble(role) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  log.appendChild(div);
  return div;
}

function assistantBubble() {
  const div = bubble("assistant");
  const details = document.createElement("details");
  details.className = "reasoning"; details.open = true; details.hidden = true;
  const summary = document.createElement("summary"); summary.textContent = "Thinking\\u2026";
  const thought = document.createElement("div"); thought.className = "reasoning-text";
  details.append(summary, thought);
  const content = document.createElement("div"); content.className = "content";
  const usage = document.createElement("div"); usage.className = "usage";
  div.append(details, content, usage);
  return { div, details, summary, thought, content, usage, started: performance.now() };
}

function settings() {
  const body = { model: MODEL, messages: history, stream: true, stream_options: { include_usage: true } };
  for (const [name, parse] of [["temperature", parseFloat], ["top_p", parseFloat], ["max_tokens", parseInt]]) {
    const v = parse($(name).value);
    if (!Number.isNaN(v)) body[name] = v;
  }
  return body;
}

function apply(view, chunk) {
  if (chunk.error) throw new Error(chunk.error.message);
  if (chunk.usage) {
    const u = chunk.usage, r = (u.completion_tokens_details || {}).reasoning_tokens || 0;
    view.usage.textContent = u.prompt_tokens + " prompt + " + u.completion_tokens + " completion tokens (" + r + " reasoning)";
  }
  for (const c of chunk.choices || []) {
    const d = c.delta || {};
    if (d.reasoning_content) { view.details.hidden = false; view.thought.textContent += d.reasoning_content; }
    if (d.content) {
      if (view.details.open && !view.content.textContent) {
        const secs = ((performance.now() - view.started) / 1000).toFixed(1);
        view.summary.textContent = "Thought for " + secs + " s";
        view.details.open = false;
      }
      view.content.textContent += d.content;
    }
    if (c.finish_reason) view.div.dataset.finish = c.finish_reason;
  }
  log.scrollTop = log.scrollHeight;
}

async function ask(text) {
  history.push({ role: "user", content: text });
  bubble("user").textContent = text;
  const view = assistantBubble();
  const headers = { "Content-Type": "application/json" };
  if (NEEDS_KEY) { localStorage.setItem("r1zero-key", $("key").value); headers.Authorization = "Bearer " + $("key").value; }
  try {
    const res = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(settings()) });
    if (!res.ok) throw new Error((await res.json()).error.message);
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
        const line = buffer.slice(0, cut).trim(); buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data !== "[DONE]") apply(view, JSON.parse(data));
      }
    }
    if (view.details.open && !view.content.textContent) view.summary.textContent = "Thinking (no answer)";
    history.push({ role: "assistant", content: view.content.textContent });
  } catch (err) {
    view.div.classList.add("error");
    view.content.textContent = "Error: " + err.message;
    history.pop();
  }
  view.div.dataset.done = "true";
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || send.disabled) return;
  input.value = ""; send.disabled = true;
  await ask(text);
  send.disabled = false; input.focus();
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("reset").addEventListener("click", () => { history = []; log.textContent = ""; input.focus(); });
input.focus();
</script>
</body></html>
"""


def chat_page(model_id: str, needs_key: bool = False) -> str:
    """The page for `model_id`; with `needs_key` it shows an API key field (kept in localStorage)."""
    as_js = json.dumps(model_id).replace("<", "\\u003c")
    return (PAGE.replace("__TITLE__", html.escape(model_id)).replace("__MODEL__", as_js)
            .replace("__NEEDS_KEY__", "true" if needs_key else "false"))
