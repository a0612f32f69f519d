// auto by measurement (src/gpu/tuning.ts): the cache's keying, reuse, invalidation when the software or the driver
// changes, --retune, and a backend that cannot be measured. The measurements are injected (no timing here).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { BackendName } from "../../src/gpu/backends.ts";
import { takeGpuFlag } from "../../src/gpu/backends.ts";
import { acquireGpu, closeGpu, gpuLine } from "../../src/gpu/device.ts";
import {
  autoPick,
  type BackendMeasurement,
  entryKey,
  readTuning,
  tuningFile,
  tuningTable,
} from "../../src/gpu/tuning.ts";

function fake(backend: BackendName, workloadMs: number, driver = "Mesa 9.9.9"): BackendMeasurement {
  return {
    backend,
    adapter: `${backend} test adapter`,
    driver,
    roundTripMs: 1,
    dispatchUs: 10,
    shapes: { "4x192x64 f16": 0.5 },
    workloadMs,
    measuredAt: "2026-12-04T08:00:00.000Z",
  };
}

/** A measure function that records its calls and returns the given figures. */
function measurer(figures: Partial<Record<BackendName, BackendMeasurement | Error>>) {
  const calls: BackendName[] = [];
  const measure = (b: BackendName) => {
    calls.push(b);
    const f = figures[b];
    return f instanceof Error || !f ? Promise.reject(f ?? new Error("absent")) : Promise.resolve(f);
  };
  return { calls, measure };
}

const log = () => {};

Deno.test("auto: measures each backend once, picks the lower workload, caches it keyed by backend/adapter/driver", async () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "sub", "gpu-tuning.json");
  try {
    const m = measurer({ wgpu: fake("wgpu", 300), dawn: fake("dawn", 120) });
    const first = await autoPick({ measure: m.measure, path, log, fingerprint: "A", retune: false });
    assert.equal(first.choice, "dawn");
    assert.deepEqual(m.calls, ["wgpu", "dawn"]);
    assert.match(first.note, /^measured: dawn 120 ms vs wgpu 300 ms$/);
    const file = readTuning(path);
    assert.deepEqual(Object.keys(file.entries).sort(), [
      "dawn · dawn test adapter · Mesa 9.9.9",
      "wgpu · wgpu test adapter · Mesa 9.9.9",
    ]);
    assert.equal(file.auto?.choice, "dawn");
    // Same fingerprint: the cached decision, nothing measured.
    const again = await autoPick({ measure: m.measure, path, log, fingerprint: "A", retune: false });
    assert.equal(again.choice, "dawn");
    assert.equal(m.calls.length, 2);
    assert.match(again.note, /^cached: dawn 120 ms vs wgpu 300 ms$/);
    assert.equal(entryKey(again.entry!), "dawn · dawn test adapter · Mesa 9.9.9");
    // A driver upgrade (another fingerprint) measures again; the new entry sits beside the old one.
    const m2 = measurer({ wgpu: fake("wgpu", 90, "Mesa 10.0.0"), dawn: fake("dawn", 120) });
    const upgraded = await autoPick({ measure: m2.measure, path, log, fingerprint: "B", retune: false });
    assert.deepEqual(m2.calls, ["wgpu", "dawn"]);
    assert.equal(upgraded.choice, "wgpu");
    assert.ok(readTuning(path).entries["wgpu · wgpu test adapter · Mesa 10.0.0"]);
    assert.ok(readTuning(path).entries["wgpu · wgpu test adapter · Mesa 9.9.9"]);
    // --retune measures even on a valid decision.
    const m3 = measurer({ wgpu: fake("wgpu", 400, "Mesa 10.0.0"), dawn: fake("dawn", 120) });
    const retuned = await autoPick({ measure: m3.measure, path, log, fingerprint: "B", retune: true });
    assert.deepEqual(m3.calls, ["wgpu", "dawn"]);
    assert.equal(retuned.choice, "dawn");
    // The table gpu-info prints: one row per entry, fastest first, and the decision.
    const table = tuningTable(readTuning(path));
    assert.match(
      table.split("\n")[1],
      /^dawn +dawn test adapter · Mesa 9\.9\.9 +1\.000 +10\.0 +0\.50 +120\.0/,
    );
    assert.match(table, /auto → dawn \(decided .*; dawn 120 ms vs wgpu 400 ms\)/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("auto: a backend that cannot be measured is left out and named; a damaged cache is measured again", async () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "gpu-tuning.json");
  try {
    Deno.writeTextFileSync(path, "{ not json");
    const m = measurer({ wgpu: fake("wgpu", 300), dawn: new Error("no adapter: Dawn needs Mesa >= 24") });
    const p = await autoPick({ measure: m.measure, path, log, fingerprint: "A", retune: false });
    assert.equal(p.choice, "wgpu");
    assert.match(p.note, /wgpu 300 ms vs dawn failed: no adapter: Dawn needs Mesa >= 24/);
    assert.deepEqual(readTuning(path).auto?.failed, { dawn: "no adapter: Dawn needs Mesa >= 24" });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("auto: the device that opens must match the measured adapter and driver, else auto measures again", async () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "gpu-tuning.json");
  try {
    // The first measurement says wgpu with a driver this machine does not have; the second the real one.
    const real = await acquireGpu({ backend: "wgpu" });
    const actual = { adapter: real.name, driver: real.driver };
    closeGpu(real);
    let calls = 0;
    const measure = (b: BackendName) => {
      calls++;
      if (b === "dawn") return Promise.resolve(fake("dawn", 1e9));
      return Promise.resolve({ ...fake("wgpu", 100), ...(calls > 2 ? actual : { driver: "Mesa 0.0.1" }) });
    };
    const lines: string[] = [];
    const gpu = await acquireGpu({ backend: "auto", measure, tuningPath: path, log: (l) => lines.push(l) });
    try {
      assert.equal(calls, 4, "measured twice (both backends each time)");
      assert.ok(
        lines.some((l) => /is not what auto measured \(wgpu · .* · Mesa 0\.0\.1\): measuring again/.test(l)),
      );
      assert.match(
        gpuLine(gpu),
        /^gpu: auto → wgpu \(measured: wgpu 100 ms vs dawn 1000000000 ms\) · .+ · .+/,
      );
      assert.equal(readTuning(path).auto?.choice, "wgpu");
    } finally {
      closeGpu(gpu);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--retune sets COGVIEW2_RETUNE; the cache lives in the cogview2 cache directory unless overridden", () => {
  const before = Deno.env.get("COGVIEW2_RETUNE");
  const saved = ["COGVIEW2_TUNING_FILE", "COGVIEW2_CACHE", "XDG_CACHE_HOME"].map((k) => [k, Deno.env.get(k)]);
  try {
    assert.deepEqual(takeGpuFlag(["--retune", "x"]), ["x"]);
    assert.equal(Deno.env.get("COGVIEW2_RETUNE"), "1");
    for (const [k] of saved) Deno.env.delete(k!);
    Deno.env.set("XDG_CACHE_HOME", "/x/cache");
    assert.equal(tuningFile(), "/x/cache/cogview2-webgpu/gpu-tuning.json");
    Deno.env.set("COGVIEW2_CACHE", "/y");
    assert.equal(tuningFile(), "/y/gpu-tuning.json");
    Deno.env.set("COGVIEW2_TUNING_FILE", "/z/t.json");
    assert.equal(tuningFile(), "/z/t.json");
  } finally {
    before === undefined ? Deno.env.delete("COGVIEW2_RETUNE") : Deno.env.set("COGVIEW2_RETUNE", before);
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k!) : Deno.env.set(k!, v);
  }
});
