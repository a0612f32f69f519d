// Backends (src/gpu/backends.ts, device.ts): the --gpu flag, the one-line reasons a backend cannot start, and auto
// falling back to the next backend. The subprocess cases point COGVIEW2_DAWN_NODE at a missing file so that they
// hold on any machine, Dawn installed or not.
import assert from "node:assert/strict";
import {
  DAWN_ADAPTER_ATTEMPTS,
  DAWN_ADAPTER_PAUSE_MS,
  DAWN_MAX_SLEEP_MS,
  DAWN_SPIN_MS,
  dawnAdapterName,
  dawnDriverFromDescription,
  dawnPollSleepMs,
  gpuChoice,
  type Immediate,
  pacedImmediate,
  parseGpuChoice,
  requestWithRetry,
  setGpuChoice,
  takeGpuFlag,
} from "../../src/gpu/backends.ts";

Deno.test("--gpu: taken from the arguments, validated, and made the process's choice", () => {
  const before = gpuChoice();
  try {
    assert.deepEqual(takeGpuFlag(["a", "--gpu", "dawn", "--x", "1"]), ["a", "--x", "1"]);
    assert.equal(gpuChoice(), "dawn");
    assert.deepEqual(takeGpuFlag(["--gpu=wgpu"]), []);
    assert.equal(gpuChoice(), "wgpu");
    assert.throws(
      () => takeGpuFlag(["--gpu", "vulkan"]),
      /--gpu must be dawn, wgpu or auto \(got 'vulkan'\)/,
    );
    assert.throws(() => takeGpuFlag(["--gpu"]), /--gpu needs a value/);
    assert.throws(() => parseGpuChoice("", "COGVIEW2_GPU"), /COGVIEW2_GPU must be/);
  } finally {
    setGpuChoice(before);
  }
});

async function runWith(code: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-webgpu", code],
    env: { ...env, XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

const device = new URL("../../src/gpu/device.ts", import.meta.url).href;

Deno.test("dawn without its addon says why in one line; auto then starts the next backend", async () => {
  const env = { COGVIEW2_DAWN_NODE: "/nonexistent/dawn.node" };
  const named = await runWith(
    `import { acquireGpu } from "${device}";
     try { await acquireGpu({ backend: "dawn" }); console.log("started"); }
     catch (e) { console.log("ERR " + e.message); }`,
    env,
  );
  assert.match(
    named.stdout,
    /^ERR the Dawn addon is missing \(\/nonexistent\/dawn\.node\): `bash tools\/run\.sh`/,
  );
  assert.equal(named.stdout.trim().split("\n").length, 1, named.stdout);
  const auto = await runWith(
    `import { acquireGpu, gpuLine } from "${device}";
     const g = await acquireGpu({ backend: "auto", autoOrder: ["dawn", "wgpu"] });
     console.log(gpuLine(g));`,
    env,
  );
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stderr, /gpu: dawn cannot start: the Dawn addon is missing .*; trying the next backend/);
  assert.match(auto.stdout, /^gpu: wgpu · .+ · .+/);
});

Deno.test("Dawn's polling is paced: a wait spins first, then sleeps a growing share; other callbacks pass through", () => {
  const queue: (() => void)[] = [];
  const passed: unknown[] = [];
  const original: Immediate = (fn, ...args) => {
    passed.push(fn);
    queue.push(() => fn(...args));
    return queue.length;
  };
  let clock = 0;
  const sleeps: number[] = [];
  const paced = pacedImmediate(original, (ms) => sleeps.push(ms), () => clock);
  // A JS callback (Node internals) is handed over as it is, never slept on.
  const js = () => {};
  paced(js);
  assert.equal(passed[0], js);
  queue.shift()!();
  // dawn.node's tick is a native function that reschedules itself while a promise is pending: 1 ms per tick here.
  let ticks = 0;
  const tick = function (this: unknown) {
    ticks++;
    clock += 1;
    if (ticks < 40) paced(tickNative);
  };
  const tickNative = tick.bind(null); // bound functions print as [native code], like Napi functions
  paced(tickNative);
  assert.notEqual(passed[1], tickNative, "native callbacks are wrapped");
  while (queue.length) queue.shift()!();
  assert.equal(ticks, 40);
  assert.equal(sleeps.length, 39, "the first tick spun, each rescheduled one slept");
  assert.equal(sleeps[0], dawnPollSleepMs(1));
  assert.ok(sleeps.every((s, i) => i === 0 || s >= sleeps[i - 1]), `sleeps grow: ${sleeps}`);
  assert.equal(Math.max(...sleeps), DAWN_MAX_SLEEP_MS);
  // The wait ended (no reschedule); the next one starts from zero: its first tick does not sleep.
  sleeps.length = 0;
  ticks = 39;
  paced(tickNative);
  queue.shift()!();
  assert.deepEqual(sleeps, []);
  assert.equal(dawnPollSleepMs(0), 0);
  assert.ok(dawnPollSleepMs(DAWN_SPIN_MS) > 0);
});

Deno.test("Dawn's adapter name and driver: the device slug where the description names only the driver", () => {
  // As Dawn reported them on an H200 (bench/results/2026-12-04-h200/call1_probe.log) and on lavapipe here.
  const nvidia = { vendor: "nvidia", device: "nvidia-h200", description: "NVIDIA: 580.159.04 580.159.4.0" };
  assert.equal(dawnAdapterName(nvidia), "nvidia-h200 (NVIDIA: 580.159.04 580.159.4.0)");
  assert.match(dawnAdapterName(nvidia), /H200/i); // the bench's peak table keys on the device name
  assert.equal(dawnDriverFromDescription(nvidia.description), "NVIDIA 580.159.04");
  const lavapipe = {
    vendor: "mesa",
    device: "llvmpipe-llvm-15-0-6-256-bits-",
    description: "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1",
  };
  // unchanged on lavapipe: the tuning cache and the recorded choices are keyed by this name
  assert.equal(dawnAdapterName(lavapipe), lavapipe.description);
  assert.equal(dawnAdapterName({ description: "", device: "" }), "unknown adapter");
  assert.equal(dawnDriverFromDescription("no driver here"), null);
});

Deno.test("Dawn's adapter request: retried with a fresh instance after 'no adapter', where our drivers are set", async () => {
  // Parallel isolates share VK_DRIVER_FILES (backends.ts requestWithRetry): a request that meets another's restore
  // finds no adapter once; the next, on a new instance, finds it.
  const pauses: number[] = [];
  let fresh = 0, calls = 0;
  const answers = [null, null, "adapter"];
  const got = await requestWithRetry(
    () => Promise.resolve(answers[calls++]),
    () => fresh++,
    DAWN_ADAPTER_ATTEMPTS,
    (ms) => (pauses.push(ms), Promise.resolve()),
  );
  assert.equal(got, "adapter");
  assert.equal(calls, 3);
  assert.equal(fresh, 2, "each retry asks a new instance");
  assert.deepEqual(pauses, [DAWN_ADAPTER_PAUSE_MS, 2 * DAWN_ADAPTER_PAUSE_MS]);
  // No adapter on every attempt: null after `attempts` requests (the caller's error names the drivers).
  calls = 0;
  assert.equal(
    await requestWithRetry(() => (calls++, Promise.resolve(null)), () => {}, 3, () => Promise.resolve()),
    null,
  );
  assert.equal(calls, 3);
  // One attempt (no drivers of ours): asked once.
  calls = 0;
  await requestWithRetry(() => (calls++, Promise.resolve(null)), () => {}, 1, () => Promise.resolve());
  assert.equal(calls, 1);
});
