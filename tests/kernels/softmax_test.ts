import assert from "node:assert/strict";
import { argmaxRows, logProb, softmax } from "../../src/kernels/softmax.ts";
import { argmaxRef, logProbRef, softmaxRef } from "../../src/reference/softmax.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

// [rows, n]: a single column, odd widths below/above the 64-wide workgroup, a 20000-wide sampling row.
const CASES: [number, number][] = [[1, 1], [3, 37], [5, 129], [2, 20000], [61, 7]];

Deno.test("softmax (scale, additive mask rows) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [rows, n] of CASES) {
    const x = randn(rows * n, rows * 31 + n, 3);
    // Additive rows as the attention mask uses them: 0 or -10000, and a log-weight of 1.4.
    const r = rng(n);
    const add = Float32Array.from({ length: 2 * n }, () => r() < 0.3 ? -10000 : r() < 0.5 ? 1.4 : 0);
    add[0] = 0;
    const tx = ctx.upload(x, [rows, n]), ta = ctx.upload(add, [2, n]);
    const plain = softmax(ctx, tx, { n, rows, scale: 0.7 });
    // Probabilities are in [0,1]; f32 exp/sum over <= 20000 terms.
    assertClose(`softmax ${rows}x${n}`, await ctx.readF32(plain), softmaxRef(x, n, { scale: 0.7 }), {
      atol: 1e-6,
      rtol: 1e-4,
    });
    const masked = softmax(ctx, tx, { n, rows, add: ta });
    assertClose(`softmax+add ${rows}x${n}`, await ctx.readF32(masked), softmaxRef(x, n, { add }), {
      atol: 1e-6,
      rtol: 1e-4,
    });
    // In place (the VQ-VAE's spatial attention scores): x is overwritten with its softmax.
    const tin = ctx.upload(x, [rows, n]);
    softmax(ctx, tin, { n, rows, scale: 0.7, out: tin });
    assertClose(`softmax in place ${rows}x${n}`, await ctx.readF32(tin), softmaxRef(x, n, { scale: 0.7 }), {
      atol: 1e-6,
      rtol: 1e-4,
    });
    [tx, ta, plain, masked, tin].forEach((t) => t.release());
  }
});

Deno.test("softmax reads strided rows at an offset", async () => {
  const ctx = await sharedContext();
  const n = 37, rows = 5, ld = 41, off = 3;
  const x = randn(off + rows * ld, 5);
  const tx = ctx.upload(x, [x.length]);
  const dense = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) dense[r * n + i] = x[off + r * ld + i];
  const out = softmax(ctx, tx, { n, rows, ld, xOff: off });
  assertClose("softmax strided", await ctx.readF32(out), softmaxRef(dense, n), { atol: 1e-6, rtol: 1e-4 });
  [tx, out].forEach((t) => t.release());
});

Deno.test("logProb and argmaxRows match the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [rows, n] of CASES) {
    const x = randn(rows * n, 7 * rows + n, 4);
    const r = rng(rows + n);
    const targets = Int32Array.from(
      { length: rows },
      (_, i) => i === 0 && rows > 1 ? -1 : Math.floor(r() * n),
    );
    const tx = ctx.upload(x, [rows, n]), tt = ctx.upload(targets, [rows], "i32");
    const lp = logProb(ctx, tx, tt, { n, rows });
    // logsumexp of values with |x| <~ 16: f32 rounding of the running sum.
    assertClose(`logProb ${rows}x${n}`, await ctx.readF32(lp), logProbRef(x, n, targets), {
      atol: 2e-5,
      rtol: 1e-5,
    });
    // Argmax straight into a token history: row r lands at 1 + 3r.
    const hist = ctx.upload(new Int32Array(3 * rows + 1).fill(-7), [3 * rows + 1], "i32");
    argmaxRows(ctx, tx, { n, rows, out: hist, oOff: 1, oStride: 3 });
    const got = await ctx.read(hist);
    const want = argmaxRef(x, n);
    for (let i = 0; i < rows; i++) assert.equal(got[1 + 3 * i], want[i], `argmax row ${i} of ${rows}x${n}`);
    assert.equal(got[0], -7);
    [tx, tt, lp, hist].forEach((t) => t.release());
  }
  // Ties: the first index wins.
  const tie = ctx.upload([1, 5, 2, 5, 5, 0, 0, 0, 0], [1, 9]);
  const ids = argmaxRows(ctx, tie, { n: 9, rows: 1 });
  assert.equal((await ctx.read(ids))[0], 1);
  [tie, ids].forEach((t) => t.release());
});
