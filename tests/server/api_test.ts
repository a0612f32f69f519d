// HTTP API tests against a real server on 127.0.0.1 with a scriptable pipeline: every success and error path.
// Not a model test: the pipeline here is tests/server/_fake_pipeline.ts; the real one is tested in text2image_test.ts.

import nodeAssert from "node:assert/strict";

const assert = (v: unknown, msg?: string): void => nodeAssert.ok(v, msg);
const assertEquals = <T>(a: T, b: T, msg?: string): void => nodeAssert.deepStrictEqual(a, b, msg);
const assertMatch = (s: string, re: RegExp): void => nodeAssert.match(s, re);
import { createApp, type RunningServer, startServer } from "../../src/server/app.ts";
import { fakeImageBytes, FakePipeline } from "./_fake_pipeline.ts";
import { encodePng } from "../../src/formats/image.ts";
import { pngBomb } from "../formats/_bombs.ts";

/** A real 1×1 PNG, base64 (the server reads the header of every uploaded image). */
const PNG_1X1 = btoa(String.fromCharCode(...encodePng(new Uint8Array(4), 1, 1)));

type Opts = Parameters<typeof createApp>[0];

async function withServer(
  opts: Partial<Opts> & { pipeline?: FakePipeline },
  fn: (s: RunningServer, base: string, p: FakePipeline) => Promise<void>,
): Promise<void> {
  const pipeline = opts.pipeline ?? new FakePipeline();
  const app = createApp({ maxQueue: 4, ...opts, pipeline });
  const server = await startServer(app, { port: 0, host: "127.0.0.1" });
  try {
    await fn(server, server.url, pipeline);
  } finally {
    await server.shutdown(100);
  }
}

function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function waitState(base: string, id: string, states: string[], timeoutMs = 10_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const j = await (await fetch(`${base}/v1/jobs/${id}`)).json();
    if (states.includes(j.state)) return j;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`Job ${id} did not reach ${states} in ${timeoutMs} ms`);
}

async function expectError(res: Response, status: number, pattern: RegExp) {
  const body = await res.json();
  assertEquals(res.status, status, `status for ${JSON.stringify(body)}`);
  assertMatch(body.error, pattern);
  return res;
}

Deno.test("page, healthz, model and metrics answer", async () => {
  await withServer({}, async (_s, base) => {
    const page = await fetch(base + "/");
    assertEquals(page.status, 200);
    assertMatch(page.headers.get("content-type")!, /text\/html/);
    assertMatch(await page.text(), /<progress id="bar"/);
    const h = await (await fetch(base + "/healthz")).json();
    assertEquals(h.status, "ok");
    const m = await (await fetch(base + "/v1/model")).json();
    assertEquals(m.name, "fake");
    assertEquals(m.demo, true);
    assertEquals(m.limits.max_images, 8);
    assertEquals(m.limits.max_prompt_tokens, 110);
    assertEquals(m.limits.max_queue, 4);
    const metrics = await fetch(base + "/metrics");
    assertMatch(metrics.headers.get("content-type")!, /text\/plain/);
    assertMatch(await metrics.text(), /cogview2_http_requests_total\{code="200"\} \d+/);
  });
});

Deno.test("a job goes queued → done, its images and previews download, metrics count them", async () => {
  await withServer({}, async (_s, base) => {
    const res = await post(base, "/v1/images", { prompt: "a cat", n: 2, seed: 7, style: "photo" });
    assertEquals(res.status, 202);
    const job = await res.json();
    assertEquals(res.headers.get("location"), `/v1/jobs/${job.id}`);
    assertEquals(job.request, {
      prompt: "a cat",
      style: "photo",
      n: 2,
      seed: 7,
      format: "png",
      only_first_stage: false,
      inverse_prompt: false,
    });
    const done = await waitState(base, job.id, ["done"]);
    assertEquals(done.progress, 1);
    assertEquals(done.images.length, 2);
    for (let k = 0; k < 2; k++) {
      const img = await fetch(base + done.images[k].url);
      assertEquals(img.headers.get("content-type"), "image/png");
      assertEquals(new Uint8Array(await img.arrayBuffer()), fakeImageBytes(7, k));
      const prev = await fetch(base + done.previews[k]);
      assertEquals(new Uint8Array(await prev.arrayBuffer()), fakeImageBytes(1007, k));
    }
    await expectError(await fetch(`${base}/v1/jobs/${job.id}/images/2`), 404, /has no image 2/);
    await expectError(await fetch(`${base}/v1/jobs/${job.id}/images/x`), 404, /No image 'x'/);
    const metrics = await (await fetch(base + "/metrics")).text();
    assertMatch(metrics, /cogview2_images_served_total 2/);
    assertMatch(metrics, /cogview2_jobs_total\{state="done"\} 1/);
    assertMatch(metrics, /cogview2_stage_seconds_count\{stage="coglm"\} 1/);
    assertMatch(metrics, /cogview2_queue_depth 0/);
  });
});

Deno.test("wait: true returns the finished job; a failing one maps to 500 or 503", async () => {
  await withServer({}, async (_s, base) => {
    const res = await post(base, "/v1/images", { prompt: "a dog", seed: 3, wait: true, format: "jpeg" });
    assertEquals(res.status, 200);
    const job = await res.json();
    assertEquals(job.state, "done");
    const img = await fetch(base + job.images[0].url);
    assertEquals(img.headers.get("content-type"), "image/jpeg");
    await img.body?.cancel();
    await expectError(await post(base, "/v1/images", { prompt: "FAIL", wait: true }), 500, /Fake failure/);
    await expectError(
      await post(base, "/v1/images", { prompt: "UNAVAILABLE", wait: true }),
      503,
      /not available/,
    );
  });
});

Deno.test("validation: every bad request gets a clear 4xx", async () => {
  await withServer({ maxBodyBytes: 2048 }, async (_s, base) => {
    const p = (b: unknown, h?: Record<string, string>) => post(base, "/v1/images", b, h);
    await expectError(await p({}), 400, /'prompt' is required/);
    await expectError(await p({ prompt: "" }), 400, /'prompt' is empty/);
    await expectError(await p({ prompt: "   " }), 400, /'prompt' is empty/);
    await expectError(await p({ prompt: 5 }), 400, /'prompt' must be a string/);
    await expectError(await p({ prompt: "x".repeat(1001) }), 400, /too long: 1001 characters/);
    await expectError(await p({ prompt: Array(111).fill("w").join(" ") }), 400, /too long: 111 tokens/);
    await expectError(
      await p({ prompt: "a", style: "cubism" }),
      400,
      /'style' must be one of none, mainbody, photo/,
    );
    await expectError(await p({ prompt: "a", n: 0 }), 400, /'n' must be between 1 and 8/);
    await expectError(await p({ prompt: "a", n: 9 }), 400, /'n' must be between 1 and 8/);
    await expectError(await p({ prompt: "a", n: 1.5 }), 400, /'n' must be an integer/);
    await expectError(await p({ prompt: "a", n: "2" }), 400, /'n' must be an integer/);
    await expectError(await p({ prompt: "a", seed: -1 }), 400, /'seed' must be between 0 and 4294967295/);
    await expectError(await p({ prompt: "a", format: "gif" }), 400, /'format' must be "png" or "jpeg"/);
    await expectError(
      await p({ prompt: "a", only_first_stage: "yes" }),
      400,
      /'only_first_stage' must be true/,
    );
    await expectError(await p({ prompt: "a", promt: "typo" }), 400, /Unknown field 'promt'/);
    await expectError(await p("{not json"), 400, /not valid JSON/);
    await expectError(await p("[1,2]"), 400, /must be a JSON object/);
    await expectError(await p("null"), 400, /must be a JSON object/);
    await expectError(await p({ prompt: "a" }, { "content-type": "text/plain" }), 415, /application\/json/);
    await expectError(
      await fetch(base + "/v1/images", { method: "POST", body: "{}" }),
      415,
      /Content-Type must be application\/json/,
    );
    await expectError(await p({ prompt: "x".repeat(3000) }), 413, /too large/);
    // Without Content-Length (a stream): the limit holds while reading.
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode(" ".repeat(512)));
        c.close();
      },
    });
    await expectError(
      await fetch(base + "/v1/images", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chunks,
      }),
      413,
      /too large/,
    );
    // Completion-specific fields.
    const c = (b: unknown) => post(base, "/v1/completions", b);
    await expectError(await c({ prompt: "a", box: [0, 0, 0.5, 0.5] }), 400, /'image' is required/);
    await expectError(await c({ prompt: "a", image: "%%%", box: [0, 0, 0.5, 0.5] }), 400, /not valid base64/);
    await expectError(
      await c({ prompt: "a", image: PNG_1X1, box: [0, 0, 1] }),
      400,
      /'box' must be \[h0/,
    );
    await expectError(await c({ prompt: "a", image: PNG_1X1, box: [0.6, 0, 0.5, 1] }), 400, /h0 < h1/);
    await expectError(await c({ prompt: "a", image: PNG_1X1, box: [0, 0, 0.5, 1.5] }), 400, /w1 <= 1/);
    await expectError(
      await c({ prompt: "a", image: PNG_1X1, box: [0, 0, 0.001, 1] }),
      400,
      /selects no pixel/,
    );
    // A well-formed completion runs.
    const ok = await c({ prompt: "a", image: PNG_1X1, box: [0.25, 0.25, 0.75, 0.75], wait: true });
    assertEquals((await ok.json()).request.box, [0.25, 0.25, 0.75, 0.75]);
    // Nothing above created a job.
    const metrics = await (await fetch(base + "/metrics")).text();
    assertMatch(metrics, /cogview2_jobs_submitted_total\{kind="completion"\} 1/);
    assert(!/kind="generate"/.test(metrics), "no invalid request created a job");
  });
});

Deno.test("unknown jobs, routes and methods", async () => {
  await withServer({}, async (_s, base) => {
    await expectError(
      await fetch(base + "/v1/jobs/00000000-0000-0000-0000-000000000000"),
      404,
      /Unknown job/,
    );
    await expectError(await fetch(base + "/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404, /Unknown job/);
    await expectError(await fetch(base + "/v1/jobs/nope/images/0"), 404, /Unknown job/);
    await expectError(await fetch(base + "/v1/jobs/nope/events"), 404, /Unknown job/);
    await expectError(await fetch(base + "/v1/jobs/nope", { method: "DELETE" }), 404, /Unknown job/);
    await expectError(await fetch(base + "/v2/whatever"), 404, /No route for GET \/v2\/whatever/);
    const r = await fetch(base + "/v1/images");
    assertEquals(r.headers.get("allow"), "POST");
    await expectError(r, 405, /Method GET is not allowed/);
  });
});

Deno.test("server-sent events: queued, started, stages, steps, previews, done — in order; late subscribers replay", async () => {
  await withServer({}, async (_s, base) => {
    const job = await (await post(base, "/v1/images", { prompt: "a bird", n: 2, seed: 1 })).json();
    const res = await fetch(base + job.urls.events);
    assertMatch(res.headers.get("content-type")!, /text\/event-stream/);
    const text = await res.text(); // the stream ends after the terminal event
    const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assertEquals(types[0], "queued");
    assert(types.includes("started"));
    assertEquals(types.filter((t) => t === "stage").length, 2);
    assertEquals(types.filter((t) => t === "preview").length, 2);
    assert(types.indexOf("preview") > types.indexOf("stage"));
    assertEquals(types[types.length - 1], "done");
    const progresses = [...text.matchAll(/"progress":([\d.]+)/g)].map((m) => Number(m[1]));
    for (let i = 1; i < progresses.length; i++) {
      assert(progresses[i] >= progresses[i - 1], "progress never goes back");
    }
    const done = JSON.parse(text.trim().split("\n").pop()!.replace(/^data: /, ""));
    assertEquals(done.images, [`/v1/jobs/${job.id}/images/0`, `/v1/jobs/${job.id}/images/1`]);
    // A subscriber arriving after the end gets the history and a closed stream.
    const late = await (await fetch(base + job.urls.events)).text();
    assertMatch(late, /event: done/);
  });
});

Deno.test("the queue bound answers 429 with Retry-After; queued and running jobs cancel; the next job runs", async () => {
  const pipeline = new FakePipeline({ stepMs: 40, steps: 5 });
  await withServer({ pipeline, maxQueue: 2 }, async (_s, base) => {
    const started = pipeline.started;
    const a = await (await post(base, "/v1/images", { prompt: "a" })).json();
    await started;
    const b = await (await post(base, "/v1/images", { prompt: "b" })).json();
    const c = await (await post(base, "/v1/images", { prompt: "c" })).json();
    assertEquals(c.queue_position, 2);
    const full = await post(base, "/v1/images", { prompt: "d" });
    assertMatch(full.headers.get("retry-after") ?? "", /^\d+$/);
    assert(Number(full.headers.get("retry-after")) >= 1);
    await expectError(full, 429, /queue is full/);
    assertEquals((await (await fetch(base + "/healthz")).json()).queue_depth, 2);
    // Cancel a queued job, then the running one.
    const delB = await fetch(`${base}/v1/jobs/${b.id}`, { method: "DELETE" });
    assertEquals(delB.status, 202);
    await delB.body?.cancel();
    assertEquals((await waitState(base, b.id, ["cancelled"])).state, "cancelled");
    const delA = await fetch(`${base}/v1/jobs/${a.id}`, { method: "DELETE" });
    assertEquals(delA.status, 202);
    await delA.body?.cancel();
    const ca = await waitState(base, a.id, ["cancelled", "done"]);
    assertEquals(ca.state, "cancelled");
    // c runs normally after the cancellations.
    assertEquals((await waitState(base, c.id, ["done", "error", "cancelled"])).state, "done");
    // DELETE on a finished job removes it.
    const del = await (await fetch(`${base}/v1/jobs/${c.id}`, { method: "DELETE" })).json();
    assertEquals(del.deleted, true);
    await expectError(await fetch(`${base}/v1/jobs/${c.id}`), 404, /Unknown job/);
  });
});

Deno.test("a failing job does not stop the next one; disconnecting clients cancel nothing else", async () => {
  const pipeline = new FakePipeline({ stepMs: 20, steps: 4 });
  await withServer({ pipeline }, async (_s, base) => {
    const bad = await (await post(base, "/v1/images", { prompt: "please FAIL" })).json();
    const good = await (await post(base, "/v1/images", { prompt: "fine", seed: 5 })).json();
    const err = await waitState(base, bad.id, ["error", "done"]);
    assertEquals(err.state, "error");
    assertMatch(err.error, /Fake failure in stage dsr/);
    assertEquals((await waitState(base, good.id, ["done", "error"])).state, "done");
    // An SSE client that goes away mid-job.
    const job = await (await post(base, "/v1/images", { prompt: "slow" })).json();
    const ac = new AbortController();
    const res = await fetch(base + job.urls.events, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.cancel().catch(() => {});
    assertEquals((await waitState(base, job.id, ["done", "error"])).state, "done");
    // A waiting client that goes away cancels its own job.
    const ac2 = new AbortController();
    const waiting = post(base, "/v1/images", { prompt: "abandoned", wait: true }).then(
      () => null,
      (e) => e,
    );
    const p2 = fetch(base + "/v1/images", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "gone", wait: true }),
      signal: ac2.signal,
    }).catch(() => null);
    await new Promise((r) => setTimeout(r, 30));
    ac2.abort();
    await p2;
    await waiting;
    const metrics = await (await fetch(base + "/metrics")).text();
    assertMatch(metrics, /cogview2_jobs_total\{state="cancelled"\} 1/);
    assertEquals((await (await fetch(base + "/healthz")).json()).status, "ok");
  });
});

Deno.test("--out: images are files named by the job id, never by the request; expiry and bound drop jobs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cogview2_out_" });
  try {
    await withServer({ outDir: dir, maxFinished: 2, ttlMs: 60_000 }, async (s, base) => {
      const ids: string[] = [];
      for (const prompt of ["../../etc/passwd", "/tmp/x", "c"]) {
        const j = await (await post(base, "/v1/images", { prompt, seed: 9, wait: true })).json();
        assertEquals(j.state, "done");
        ids.push(j.id);
      }
      const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      for (const f of files) assertMatch(f, /^[0-9a-f-]{36}-0\.png$/);
      const img = await fetch(`${base}/v1/jobs/${ids[2]}/images/0`);
      assertEquals(new Uint8Array(await img.arrayBuffer()), fakeImageBytes(9, 0));
      // The bound (2 finished jobs) dropped the first job and its file on the next submission.
      s.app.queue.sweep();
      await new Promise((r) => setTimeout(r, 20));
      await expectError(await fetch(`${base}/v1/jobs/${ids[0]}`), 404, /Unknown job/);
      assertEquals([...Deno.readDirSync(dir)].length, 2);
    });
    await withServer({ ttlMs: 50 }, async (s, base) => {
      const j = await (await post(base, "/v1/images", { prompt: "short-lived", wait: true })).json();
      await new Promise((r) => setTimeout(r, 80));
      s.app.queue.sweep();
      await expectError(await fetch(`${base}/v1/jobs/${j.id}`), 404, /Unknown job/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown: new jobs refused, the running job cancelled after the grace period, streams closed", async () => {
  const pipeline = new FakePipeline({ stepMs: 50, steps: 20 });
  const app = createApp({ pipeline, maxQueue: 4 });
  const server = await startServer(app, { port: 0, host: "127.0.0.1" });
  const base = server.url;
  const started = pipeline.started;
  const a = await (await post(base, "/v1/images", { prompt: "long" })).json();
  const b = await (await post(base, "/v1/images", { prompt: "queued" })).json();
  await started;
  const events = fetch(base + a.urls.events).then((r) => r.text());
  const t0 = Date.now();
  await server.shutdown(100);
  assert(Date.now() - t0 < 3000, "shutdown is prompt");
  const text = await events;
  assertMatch(text, /event: cancelled/);
  assertEquals(app.queue.get(a.id)?.state, "cancelled");
  assertEquals(app.queue.get(b.id)?.state, "cancelled");
  await server.finished;
  let refused = false;
  try {
    await fetch(base + "/healthz");
  } catch {
    refused = true;
  }
  assert(refused, "the port is closed after shutdown");
});

Deno.test("SIGTERM: a served process finishes its job within the grace period and exits 0", async () => {
  const script = new URL("./_serve_fake.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/listening on (\S+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const base = out.match(/listening on (\S+)/)![1];
  const job = await (await post(base, "/v1/images", { prompt: "finish me", seed: 2 })).json();
  await new Promise((r) => setTimeout(r, 30));
  child.kill("SIGTERM");
  const status = await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  const err = await new Response(child.stderr).text();
  assertEquals(status.code, 0, err);
  assertMatch(err, new RegExp(`SIGTERM: shutting down .*job ${job.id} gets`));
  assertMatch(err, /job .* done/);
  assertMatch(err, /stopped/);
});

Deno.test("attack: a PNG declaring 20000x20000 sent to /v1/completions is a 400 at once, no job, no memory", async () => {
  await withServer({}, async (_s, base) => {
    const bomb = pngBomb(20000, 20000, 2);
    const rss0 = Deno.memoryUsage().rss, t0 = performance.now();
    const res = await post(base, "/v1/completions", {
      prompt: "a",
      image: btoa(String.fromCharCode(...bomb)),
      box: [0.25, 0.25, 0.75, 0.75],
    });
    const ms = performance.now() - t0;
    await expectError(res, 400, /'image': decodeImage: PNG: 20000x20000 is too large/);
    const grew = (Deno.memoryUsage().rss - rss0) / 2 ** 20;
    assert(ms < 1000 && grew < 64, `${ms} ms, RSS +${grew} MiB`);
    assert(!/kind="completion"/.test(await (await fetch(base + "/metrics")).text()), "no job was created");
  });
});

Deno.test("attack: DNS rebinding — a Host or Origin the server does not serve gets 421 / 403 on every route", async () => {
  await withServer({}, async (_s, base) => {
    const port = new URL(base).port;
    for (const path of ["/", "/healthz", "/v1/model", "/v1/jobs", "/metrics"]) {
      // fetch() refuses to set Host; a raw request does what curl -H 'Host: evil.example' did (200 before).
      const raw = await rawGet(Number(port), path, { host: `evil.example:${port}` });
      assertMatch(raw, /^HTTP\/1\.1 421 /);
      assertMatch(raw, /Host 'evil\.example:\d+' is not served here/);
    }
    assertMatch(await rawGet(Number(port), "/healthz", { host: `localhost:${port}` }), /^HTTP\/1\.1 200 /);
    assertMatch(await rawGet(Number(port), "/healthz", { host: `[::1]:${port}` }), /^HTTP\/1\.1 200 /);
    await expectError(
      await fetch(base + "/v1/model", { headers: { origin: "http://evil.example" } }),
      403,
      /Cross-origin/,
    );
    assertEquals((await fetch(base + "/v1/model", { headers: { origin: base } })).status, 200);
  });
  // --allow-host adds names.
  const { allowedHosts } = await import("../../src/server/access.ts");
  await withServer({ hosts: allowedHosts("127.0.0.1", ["gpu.lan"]) }, async (_s, base) => {
    const port = Number(new URL(base).port);
    assertMatch(await rawGet(port, "/healthz", { host: `gpu.lan:${port}` }), /^HTTP\/1\.1 200 /);
    assertMatch(await rawGet(port, "/healthz", { host: `evil.example:${port}` }), /^HTTP\/1\.1 421 /);
  });
});

Deno.test("token: every route but /healthz needs it (Bearer, the page's cookie); the page's ?token= sets the cookie", async () => {
  const token = "0123456789abcdef-secret";
  await withServer({ token }, async (_s, base) => {
    for (const path of ["/", "/v1/model", "/v1/jobs", "/metrics", `/v1/jobs/${crypto.randomUUID()}`]) {
      const res = await fetch(base + path);
      nodeAssert.equal(res.status, 401, path);
      assertEquals(res.headers.get("www-authenticate"), 'Bearer realm="cogview2"');
      assertMatch((await res.json()).error, /needs its token/);
    }
    await expectError(await post(base, "/v1/images", { prompt: "a" }), 401, /needs its token/);
    await expectError(
      await fetch(base + "/v1/model", { headers: { authorization: "Bearer wrong-token-wrong-token" } }),
      401,
      /Wrong token/,
    );
    assertEquals((await fetch(base + "/healthz")).status, 200);
    const auth = { authorization: `Bearer ${token}` };
    assertEquals((await fetch(base + "/v1/model", { headers: auth })).status, 200);
    const job = await (await post(base, "/v1/images", { prompt: "a cat", wait: true }, auth)).json();
    assertEquals(job.state, "done");
    // The browser's first load: 303 to / with an HttpOnly SameSite=Strict cookie, which then opens everything.
    const first = await fetch(`${base}/?token=${token}`, { redirect: "manual" });
    assertEquals(first.status, 303);
    assertEquals(first.headers.get("location"), "/");
    const cookie = first.headers.get("set-cookie")!;
    assertMatch(cookie, /^cogview2_token=.*; HttpOnly; SameSite=Strict; Path=\//);
    const c = { cookie: cookie.split(";")[0] };
    assertEquals((await fetch(base + "/", { headers: c })).status, 200);
    assertEquals((await fetch(base + job.images[0].url, { headers: c })).status, 200);
    assertEquals((await fetch(`${base}/?token=nope-nope-nope-nope`, { redirect: "manual" })).status, 401);
  });
});

Deno.test("GET /v1/jobs lists the stored jobs newest first (id, state, prompt, created, seconds), bounded like the store", async () => {
  await withServer({ maxFinished: 3 }, async (_s, base) => {
    for (let i = 0; i < 5; i++) {
      await (await post(base, "/v1/images", { prompt: `job ${i}`, wait: true })).json();
    }
    const running = await (await post(base, "/v1/images", { prompt: "job 5" })).json();
    const { jobs } = await (await fetch(base + "/v1/jobs")).json();
    assertEquals(jobs.map((j: { prompt: string }) => j.prompt), ["job 5", "job 4", "job 3", "job 2"]);
    assertEquals(jobs[0].id, running.id);
    assert(["queued", "running"].includes(jobs[0].state));
    const done = jobs[1];
    assertEquals(Object.keys(done).sort(), ["created_at", "id", "kind", "prompt", "seconds", "state", "url"]);
    assertEquals(done.state, "done");
    assert(typeof done.seconds === "number" && done.seconds > 0, JSON.stringify(done));
    assertEquals((await fetch(base + "/v1/jobs", { method: "POST" })).status, 405);
    await fetch(base + `/v1/jobs/${running.id}`, { method: "DELETE" });
  });
});

Deno.test("/v1/model shows no filesystem path", async () => {
  await withServer({}, async (_s, base) => {
    const text = await (await fetch(base + "/v1/model")).text();
    assert(!/"dir"/.test(text) && !/\/(tmp|home|root|work)\//.test(text), text);
  });
});

/** A GET with chosen headers over a raw socket (fetch cannot set Host); returns the response head and body. */
async function rawGet(port: number, path: string, headers: Record<string, string>): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\n${head}connection: close\r\n\r\n`));
  const text = await new Response(conn.readable).text();
  return text;
}
