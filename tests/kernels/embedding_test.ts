import { embedding } from "../../src/kernels/embedding.ts";
import { embeddingRef } from "../../src/reference/embedding.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

Deno.test("embedding gather (f32/f16 tables, odd widths, position ids or a constant position) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [vocab, cols, rows] of [[37, 1, 5], [61, 37, 13], [129, 64, 7]] as const) {
    const table = randn(vocab * cols, vocab + cols), ptab = randn(17 * cols, cols, 0.5);
    const r = rng(rows);
    const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * vocab));
    const pos = Int32Array.from({ length: rows }, () => Math.floor(r() * 17));
    for (const dtype of ["f32", "f16"] as const) {
      const tw = ctx.upload(table, [vocab, cols], dtype), tp = ctx.upload(ptab, [17, cols], dtype);
      const [w, p] = [await ctx.readF32(tw), await ctx.readF32(tp)];
      const ti = ctx.upload(ids, [rows], "i32"), tpi = ctx.upload(pos, [rows], "i32");
      // Gathers and one add: exact up to f32 rounding.
      const o1 = embedding(ctx, ti, tw, { rows });
      assertClose(`embedding ${vocab}x${cols} ${dtype}`, await ctx.readF32(o1), embeddingRef(ids, w, cols), {
        atol: 0,
      });
      const o2 = embedding(ctx, ti, tw, { rows, posTable: tp, posIds: tpi });
      assertClose(
        `embedding+pos ${dtype}`,
        await ctx.readF32(o2),
        embeddingRef(ids, w, cols, { table: p, ids: pos }),
        {
          atol: 1e-6,
        },
      );
      const o3 = embedding(ctx, ti, tw, { rows: rows - 2, idOff: 2, posTable: tp, pos: 11 });
      assertClose(
        `embedding+const pos ${dtype}`,
        await ctx.readF32(o3),
        embeddingRef(ids.slice(2), w, cols, { table: p, ids: new Int32Array(rows - 2).fill(11) }),
        { atol: 1e-6 },
      );
      [tw, tp, ti, tpi, o1, o2, o3].forEach((t) => t.release());
    }
  }
});

Deno.test("embedding gathers from a row-chunked table", async () => {
  const ctx = await sharedContext();
  const vocab = 61, cols = 37, rows = 29;
  const table = randn(vocab * cols, 3);
  const r = rng(9);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * vocab));
  const ptab = randn(5 * cols, 4);
  const pos = Int32Array.from({ length: rows }, (_, i) => i % 5);
  for (const dtype of ["f32", "f16"] as const) {
    // Blocks of 10 rows (even, so f16 blocks start on whole words): 7 blocks, the last one short.
    const full = ctx.upload(table, [vocab, cols], dtype);
    const w = await ctx.readF32(full);
    const chunks = [];
    for (let row0 = 0; row0 < vocab; row0 += 10) {
      const n = Math.min(10, vocab - row0);
      chunks.push({
        row0,
        rows: n,
        tensor: ctx.upload(w.subarray(row0 * cols, (row0 + n) * cols), [n, cols], dtype),
      });
    }
    const tp = ctx.upload(ptab, [5, cols], dtype);
    const p = await ctx.readF32(tp);
    const ti = ctx.upload(ids, [rows], "i32"), tpi = ctx.upload(pos, [rows], "i32");
    const out = embedding(ctx, ti, { rows: vocab, cols, dtype, chunks }, { rows, posTable: tp, posIds: tpi });
    assertClose(
      `chunked ${dtype}`,
      await ctx.readF32(out),
      embeddingRef(ids, w, cols, { table: p, ids: pos }),
      {
        atol: 1e-6,
      },
    );
    [full, tp, ti, tpi, out, ...chunks.map((c) => c.tensor)].forEach((t) => t.release());
  }
});

Deno.test("embedding gathers batched rows (id batch stride, positions shared by the batch)", async () => {
  const ctx = await sharedContext();
  const vocab = 37, cols = 13, B = 3, R = 2, L = 11, off = 4;
  const table = randn(vocab * cols, 21), ptab = randn(9 * cols, 22);
  const seq = Int32Array.from({ length: B * L }, (_, i) => (i * 7) % vocab);
  const pos = Int32Array.from([5, 8]);
  const tw = ctx.upload(table, [vocab, cols]), tp = ctx.upload(ptab, [9, cols]);
  const ts = ctx.upload(seq, [B * L], "i32"), tpi = ctx.upload(pos, [2], "i32");
  const out = embedding(ctx, ts, tw, {
    rows: B * R,
    idOff: off,
    rowsPerBatch: R,
    idBatchStride: L,
    posTable: tp,
    posIds: tpi,
  });
  const ids = Int32Array.from({ length: B * R }, (_, r) => seq[off + Math.floor(r / R) * L + (r % R)]);
  const p = Int32Array.from({ length: B * R }, (_, r) => pos[r % R]);
  assertClose(
    "batched rows",
    await ctx.readF32(out),
    embeddingRef(ids, table, cols, { table: ptab, ids: p }),
    { atol: 1e-6 },
  );
  [tw, tp, ts, tpi, out].forEach((t) => t.release());
});
