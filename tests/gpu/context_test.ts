import assert from "node:assert/strict";
import { preprocess } from "../../src/gpu/shader_source.ts";
import { add, mul } from "../../src/kernels/elementwise.ts";
import { fillUniform } from "../../src/kernels/fill.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { sharedContext } from "../_util.ts";

Deno.test("pool reuses released buffers of the same size class", async () => {
  const ctx = await sharedContext();
  const a = ctx.empty([1000], "f32");
  const buf = a.buffer;
  a.release();
  const b = ctx.empty([1001], "f32");
  assert(b.buffer === buf, "a released buffer of the same size class is reused");
  b.release();
});

Deno.test("f16 tensors round-trip packed two per word, odd lengths included", async () => {
  const ctx = await sharedContext();
  const vals = [0.5, -2, 65504, 1 / 3, 7];
  const t = ctx.upload(vals, [5], "f16");
  assert.deepEqual(t.byteLength, 12);
  const back = await ctx.read(t);
  assert.deepEqual(Array.from(back), Array.from(new Float16Array(vals)));
});

Deno.test("errors name the kernel and the argument", async () => {
  const ctx = await sharedContext();
  const a = ctx.upload([1, 2, 3], [3]), b = ctx.upload([1, 2], [2]);
  assert.throws(() => add(ctx, a, b), /ADD: sizes differ/);
  const r = ctx.upload([1], [1]);
  r.release();
  assert.throws(() => add(ctx, r, r), /used after release/);
  // BINARY without an op leaves `a` unused but is valid WGSL: it compiles and the next sync reports nothing.
  await ctx.sync();
  ctx.kernel({
    name: "binary_no_op",
    shader: "elementwise.wgsl",
    defines: { BINARY: 1 },
    bindings: ["read", "read", "write"],
  });
  await ctx.sync();
  // A define set that breaks compilation (ADD without BINARY: no B binding) fails the next sync, naming the kernel.
  ctx.kernel({
    name: "broken_shader",
    shader: "elementwise.wgsl",
    defines: { ADD: 1 },
    bindings: ["read", "write"],
  });
  await assert.rejects(() => ctx.sync(), /broken_shader/);
});

Deno.test("shader preprocessor: #if/#elif/#else, {{values}}, includes once", () => {
  const src = preprocess("elementwise.wgsl", { ADD: 1, BINARY: 1 });
  assert(src.includes("fn gelu_sat"), "common.wgsl included");
  assert(src.includes("a + B[P.b_off + i]"));
  assert(!src.includes("= a * P.s"));
  assert(!src.includes("#if"));
});

Deno.test("one encoder per batch: many dispatches, one submit", async () => {
  const ctx = await sharedContext();
  await ctx.sync();
  const before = ctx.stats.submits;
  const a = ctx.upload(new Float32Array(64).fill(1), [64]);
  let x = a;
  for (let i = 0; i < 50; i++) x = add(ctx, x, a);
  const out = await ctx.readF32(x);
  assert.deepEqual(out[0], 51);
  // writes flush before uploading; the 50 adds and the readback copy go in one submit
  assert.deepEqual(ctx.stats.submits - before, 1); // the 50 adds and the readback copy: one submit
});

Deno.test("compile task embeds the shaders folder", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert(/--include shaders/.test(cfg.tasks.compile), "deno.json compile task must --include shaders");
  // the demo model's tokenizer and VQ-VAE shapes are read from assets/ at run time
  assert(/--include assets/.test(cfg.tasks.compile), "deno.json compile task must --include assets");
  for await (const e of Deno.readDir(new URL("../../shaders/", import.meta.url))) {
    // every shader file's directives parse; placeholders get a dummy value, 8 (kernels supply real ones; #define
    // arithmetic such as (BN/TN)*(BM/8) needs a value that does not divide to 0)
    if (e.name.endsWith(".wgsl")) preprocess(e.name, new Proxy({}, { has: () => true, get: () => 8 }));
  }
});

Deno.test("profile by grid: one entry per kernel and workgroup grid, dispatches counted", async () => {
  const ctx = await sharedContext();
  const small = ctx.upload([1, 2, 3], [3]), big = ctx.upload(new Float32Array(1 << 18), [1 << 18]);
  assert.ok(ctx.startProfile({ byGrid: true }), "lavapipe has timestamp queries");
  const outs = [add(ctx, small, small), add(ctx, small, small), add(ctx, big, big)];
  const t = await ctx.stopProfile();
  const adds = t.filter((k) => k.name === t.find((x) => x.dispatches === 2)?.name);
  assert.equal(adds.length, 2, `two grids of one kernel: ${JSON.stringify(t)}`);
  assert.deepEqual(adds.map((k) => k.dispatches).sort(), [1, 2]);
  assert.ok(adds.every((k) => /^\d+×\d+×\d+$/.test(k.grid ?? "")), "grids as x×y×z");
  assert.notEqual(adds[0].grid, adds[1].grid);
  // Without byGrid: one entry per kernel.
  assert.ok(ctx.startProfile());
  outs.push(add(ctx, small, small), add(ctx, big, big));
  const plain = await ctx.stopProfile();
  assert.ok(plain.every((k) => k.grid === undefined));
  assert.equal(plain.find((k) => k.name === adds[0].name)?.dispatches, 2);
  [small, big, ...outs].forEach((x) => x.release());
});

Deno.test("profilePhase: dispatches counted under the phase set when they were recorded", async () => {
  const ctx = await sharedContext();
  const x = ctx.upload([1, 2, 3], [3]);
  ctx.profilePhase("ignored"); // not profiling: no effect
  assert.ok(ctx.startProfile({ byGrid: true }));
  const outs = [add(ctx, x, x)];
  ctx.profilePhase("decode");
  outs.push(add(ctx, x, x), add(ctx, x, x));
  ctx.profilePhase(null);
  outs.push(add(ctx, x, x));
  const t = await ctx.stopProfile();
  assert.deepEqual(t.map((k) => [k.phase ?? "-", k.dispatches]).sort(), [["-", 2], ["decode", 2]]);
  [x, ...outs].forEach((u) => u.release());
});

Deno.test("bind-group cache: reused only for the same kernel, buffers, offsets and sizes", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext(shared.gpu); // its own caches and counts
  const n = 256, av = Float32Array.from({ length: n }, (_, i) => i), bv = av.map((v) => 1000 + 2 * v);
  const a = ctx.upload(av, [n]), b = ctx.upload(bv, [n]), out = ctx.empty([16]);
  const made = () => ctx.stats.bindGroups;
  // Elements [e, e + 16) of a and b, as views (same buffers, other offsets: multiples of 64 elements, 256 bytes).
  const run = async (op: typeof add, e: number, len = 16) => {
    const before = made();
    op(ctx, a.view([len], 4 * e), b.view([len], 4 * e), out.view([len], 0));
    const got = Array.from(await ctx.readF32(out)).slice(0, len);
    const want = Array.from(
      { length: len },
      (_, i) => op === add ? av[e + i] + bv[e + i] : av[e + i] * bv[e + i],
    );
    assert.deepEqual(got, want, `${op === add ? "add" : "mul"} of elements [${e}, ${e + len})`);
    return made() - before;
  };
  assert.equal(await run(add, 0), 1, "first use creates a bind group");
  assert.equal(await run(add, 0), 0, "same kernel, buffers, offsets and sizes: reused");
  assert.equal(await run(add, 64), 1, "other offsets: a new bind group");
  assert.equal(await run(add, 0, 8), 1, "other sizes: a new bind group");
  assert.equal(await run(mul, 0), 1, "another kernel over the same ranges: a new bind group");
  assert.equal(await run(add, 64), 0);
  // A buffer destroyed by trim() and a new one at the same pool size class: a new bind group over the new buffer.
  const t = ctx.empty([16]);
  add(ctx, a.view([16], 0), b.view([16], 0), t);
  t.release();
  ctx.trim();
  const t2 = ctx.empty([16]);
  const before = made();
  add(ctx, a.view([16], 512), b.view([16], 512), t2);
  assert.equal(made() - before, 1, "a re-created buffer gets its own bind group");
  assert.deepEqual(
    Array.from(await ctx.readF32(t2)),
    Array.from({ length: 16 }, (_, i) => av[128 + i] + bv[128 + i]),
  );
  [a, b, out, t2].forEach((x) => x.release());
  ctx.trim();
});

Deno.test("params slots: dispatches of one kernel over the same buffers in one recording each read their own params; a repeated recording reuses its bind groups", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext(shared.gpu); // its own caches and counts
  const t = ctx.empty([64]), u = ctx.empty([64]);
  const record = (a: number, b: number) => {
    fillUniform(ctx, t, { seed: 0, scale: 0, offset: a }); // every element = a
    ctx.copy(t, u);
    fillUniform(ctx, t, { seed: 0, scale: 0, offset: b });
  };
  const b0 = ctx.stats.bindGroups;
  record(1, 5);
  const [tv, uv] = await ctx.readMany([t, u]);
  assert.deepEqual([tv[0], tv[63], uv[0], uv[63]], [5, 5, 1, 1], "second fill's params, first fill's copy");
  assert.equal(ctx.stats.bindGroups - b0, 2, "one bind group per params slot (the kernel binds its slot)");
  const b1 = ctx.stats.bindGroups;
  record(2, 7); // the same dispatches from slot 0 again (a decode step after a flush)
  const [tw, uw] = await ctx.readMany([t, u]);
  assert.deepEqual([tw[0], uw[0]], [7, 2]);
  assert.equal(ctx.stats.bindGroups - b1, 0, "a repeated recording creates no bind group");
  [t, u].forEach((x) => x.release());
  ctx.trim();
});
