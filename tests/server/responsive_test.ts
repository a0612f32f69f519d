// The served process on the real pipeline (demo model, lavapipe or whatever adapter): /healthz answers in under
// 100 ms (p95; p99 < 500 ms on a loaded machine) while a full job runs, and SIGTERM with --grace exits within the
// grace period even in the middle of a long GPU stage, the job cancelled inside the stage. Not a load test (load_test.ts) nor an API test (api_test.ts, scriptable pipeline).

import nodeAssert from "node:assert/strict";

const root = new URL("../../", import.meta.url).pathname;
/** As the attack run used it (an exit after 16-17 s before). */
const GRACE_S = 10;

Deno.test({
  name: "served demo model: /healthz p95 < 100 ms during a job; SIGTERM mid-stage exits within --grace",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-webgpu", "main.ts", "serve", "--port", "0", "--grace", String(GRACE_S)],
      cwd: root,
      env: { COGVIEW2_CACHE: `${root}.cache`, XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const drain = (async () => {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
      }
    })();
    let exited = false;
    try {
      const t0 = Date.now();
      while (!/listening on (http:\S+)/.test(log)) {
        nodeAssert.ok(Date.now() - t0 < 180_000, `server starts: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const base = log.match(/listening on (http:\S+)/)![1];
      const job = await (await fetch(`${base}/v1/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a cat", seed: 1 }),
      })).json();
      // Poll /healthz through CogLM, the preview and into the first SR stage (the long GPU waits).
      const lat: number[] = [];
      let stage = "", srSince = 0;
      while (true) {
        const a = performance.now();
        const h = await fetch(`${base}/healthz`);
        await h.body?.cancel();
        lat.push(performance.now() - a);
        if (lat.length % 8 === 0) {
          stage = (await (await fetch(`${base}/v1/jobs/${job.id}`)).json()).stage ?? "";
          if ((stage === "dsr" || stage === "itersr") && !srSince) srSince = Date.now();
        }
        if (srSince && Date.now() - srSince > 2000) break;
        nodeAssert.ok(Date.now() - t0 < 400_000, `the job reaches super-resolution (stage ${stage})`);
        await new Promise((r) => setTimeout(r, 25));
      }
      lat.sort((x, y) => x - y);
      const p50 = lat[lat.length >> 1], p95 = lat[Math.floor(lat.length * 0.95)];
      const p99 = lat[Math.floor(lat.length * 0.99)], max = lat[lat.length - 1];
      // SIGTERM in the middle of the SR stage: cancelled at the grace period's end, the process gone right after.
      const t1 = performance.now();
      child.kill("SIGTERM");
      const status = await child.status;
      exited = true;
      const exitS = (performance.now() - t1) / 1000;
      await drain;
      console.log(
        `/healthz during the job: ${lat.length} requests, p50 ${p50.toFixed(1)} ms, p95 ${
          p95.toFixed(1)
        } ms, p99 ${p99.toFixed(1)} ms, ` +
          `max ${max.toFixed(1)} ms; SIGTERM during ${stage}: exit ${status.code} after ${
            exitS.toFixed(2)
          } s ` +
          `(--grace ${GRACE_S})`,
      );
      if (Deno.env.get("DEBUG_LOG")) console.log(log);
      // Alone on this 2-core machine p99 was 9.8-72 ms; under the parallel suite (and other jobs) 224 ms, from the
      // process not being scheduled. A loop waiting on the GPU (the in-process pipeline) gave p99 14.9 s.
      nodeAssert.ok(p95 < 100 && p99 < 500, `/healthz p95 ${p95} ms, p99 ${p99} ms`);
      nodeAssert.equal(status.code, 0, log);
      // The job is cancelled at 5 s; the cancellation reaches inside the SR stage within one GPU step (0.2-2.2 s
      // here under load 11), so the pipeline worker is not stopped (it would be at 9 s) and the process exits at
      // 5.3-7.2 s. Checked only between LoPAR rounds (5-7 s each here), the worker had to be stopped.
      nodeAssert.ok(exitS < GRACE_S, `exited after ${exitS} s with --grace ${GRACE_S}`);
      nodeAssert.match(log, /SIGTERM: shutting down/);
      nodeAssert.match(log, /cancelled in/);
      nodeAssert.doesNotMatch(
        log,
        /stopping the pipeline/,
        "cancelled inside the stage, not by stopping the worker",
      );
    } finally {
      if (!exited) {
        child.kill("SIGKILL");
        await child.status;
      }
    }
  },
});
