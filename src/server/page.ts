// The one web page served at GET /: a form, a progress bar fed by server-sent events, previews, results.
// Not a front-end framework: plain HTML + a small script against the public API, embedded so `deno compile` carries it.

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CogView2 on WebGPU</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d1d1f; background: #fafafa; }
  body { max-width: 980px; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
  h1 { font-size: 1.4rem; margin: .5rem 0 1rem; }
  #notice { padding: .6rem .8rem; border-radius: 6px; margin-bottom: 1rem; display: none; }
  #notice.demo { display: block; background: #fff4ce; border: 1px solid #e0c060; }
  #notice.real { display: block; background: #e8f4ea; border: 1px solid #9c9; }
  form { display: grid; grid-template-columns: repeat(4, auto) 1fr; gap: .5rem .8rem; align-items: end; }
  label { display: flex; flex-direction: column; font-size: .85rem; gap: .2rem; }
  #prompt-label { grid-column: 1 / -1; }
  textarea { font: inherit; min-height: 3.2rem; padding: .4rem; }
  input, select, button { font: inherit; padding: .3rem .4rem; }
  button { cursor: pointer; }
  .checks { display: flex; gap: 1rem; font-size: .85rem; grid-column: 1 / -1; }
  .checks label { flex-direction: row; align-items: center; }
  #bar { width: 100%; height: 14px; margin-top: 1rem; }
  #status { font-size: .9rem; margin: .3rem 0 .8rem; min-height: 1.2em; }
  #status.error { color: #b00020; }
  .grid { display: flex; flex-wrap: wrap; gap: .6rem; }
  .grid figure { margin: 0; }
  .grid img { display: block; background: #ddd; }
  #previews img { width: 160px; height: 160px; image-rendering: pixelated; }
  #results img { width: 300px; height: 300px; }
  figcaption { font-size: .8rem; }
  h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
</style>
</head>
<body>
<h1>CogView2 text-to-image <small style="font-weight:normal;color:#666">WebGPU</small></h1>
<div id="notice" role="note"></div>
<form id="form">
  <label id="prompt-label">Prompt
    <textarea id="prompt" name="prompt" required maxlength="1000" placeholder="a tiger wearing VR glasses"></textarea>
  </label>
  <label>Style <select id="style" name="style"></select></label>
  <label>Images <input id="n" name="n" type="number" min="1" max="16" value="1" style="width:4.5em"></label>
  <label>Seed <input id="seed" name="seed" type="number" min="0" max="4294967295" placeholder="random" style="width:8em"></label>
  <span></span>
  <span style="display:flex;gap:.5rem;justify-content:flex-end">
    <button id="generate" type="submit">Generate</button>
    <button id="cancel" type="button" disabled>Cancel</button>
  </span>
  <div class="checks">
    <label><input id="only_first_stage" type="checkbox"> first stage only (160×160, fast)</label>
    <label><input id="inverse_prompt" type="checkbox"> post-selection (rank by prompt likelihood)</label>
    <label>format <select id="format"><option>png</option><option>jpeg</option></select></label>
  </div>
</form>
<progress id="bar" max="1" value="0"></progress>
<div id="status" aria-live="polite"></div>
<h2>Previews</h2>
<div id="previews" class="grid"></div>
<h2>Results</h2>
<div id="results" class="grid"></div>
<script>
const $ = (id) => document.getElementById(id);
let current = null, source = null;

async function loadModel() {
  const r = await fetch("/v1/model");
  const m = await r.json();
  const sel = $("style");
  for (const s of m.styles) {
    const o = document.createElement("option");
    o.value = o.textContent = s;
    if (s === m.default_style) o.selected = true;
    sel.appendChild(o);
  }
  $("n").max = m.limits.max_images;
  const note = $("notice");
  note.className = m.demo ? "demo" : "real";
  note.textContent = (m.demo ? "" : "Model: ") + m.notice; // a demo's notice says so itself
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function figure(src, caption, link) {
  const f = document.createElement("figure");
  const img = document.createElement("img");
  img.src = src;
  img.alt = caption;
  f.appendChild(img);
  const c = document.createElement("figcaption");
  if (link) {
    const a = document.createElement("a");
    a.href = src;
    a.download = link;
    a.textContent = "download " + caption;
    c.appendChild(a);
  } else c.textContent = caption;
  f.appendChild(c);
  return f;
}

function finish() {
  $("generate").disabled = false;
  $("cancel").disabled = true;
  if (source) source.close();
  source = null;
}

$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {
    prompt: $("prompt").value,
    style: $("style").value,
    n: Number($("n").value || 1),
    only_first_stage: $("only_first_stage").checked,
    inverse_prompt: $("inverse_prompt").checked,
    format: $("format").value,
  };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  $("previews").innerHTML = "";
  $("results").innerHTML = "";
  $("bar").value = 0;
  $("generate").disabled = true;
  setStatus("submitting…");
  let r;
  try {
    r = await fetch("/v1/images", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    setStatus("network error: " + e, true);
    return finish();
  }
  const job = await r.json();
  if (!r.ok) {
    setStatus(job.error + (r.headers.get("retry-after") ? " (retry after " + r.headers.get("retry-after") + " s)" : ""), true);
    return finish();
  }
  current = job;
  $("cancel").disabled = false;
  setStatus("queued (seed " + job.request.seed + ")");
  source = new EventSource(job.urls.events);
  source.addEventListener("queued", (e) => setStatus("queued, position " + JSON.parse(e.data).position));
  source.addEventListener("started", () => setStatus("running"));
  source.addEventListener("stage", (e) => {
    const d = JSON.parse(e.data);
    $("bar").value = d.progress;
    setStatus("stage " + d.stage);
  });
  source.addEventListener("step", (e) => {
    const d = JSON.parse(e.data);
    $("bar").value = d.progress;
    setStatus("stage " + d.stage + ": step " + d.step + " / " + d.steps + " (" + Math.round(d.progress * 100) + "%)");
  });
  source.addEventListener("preview", (e) => {
    const d = JSON.parse(e.data);
    $("previews").appendChild(figure(d.url, "sample " + (d.index + 1), null));
  });
  source.addEventListener("done", async (e) => {
    const d = JSON.parse(e.data);
    $("bar").value = 1;
    const ext = body.format === "jpeg" ? "jpg" : "png";
    d.images.forEach((url, k) => $("results").appendChild(figure(url, "image " + (k + 1), "cogview2-" + (k + 1) + "." + ext)));
    setStatus("done: " + d.images.length + " image(s), seed " + job.request.seed);
    finish();
  });
  source.addEventListener("error", (e) => {
    if (e.data) {
      setStatus("error: " + JSON.parse(e.data).message, true);
      finish();
    }
  });
  source.addEventListener("cancelled", () => {
    setStatus("cancelled", true);
    finish();
  });
});

$("cancel").addEventListener("click", async () => {
  if (current) await fetch("/v1/jobs/" + current.id, { method: "DELETE" });
});

loadModel().catch((e) => setStatus("cannot load /v1/model: " + e, true));
</script>
</body>
</html>
`;

/** The page's HTML (static; it reads the model, styles and limits from /v1/model at load). */
export function renderPage(): string {
  return HTML;
}
