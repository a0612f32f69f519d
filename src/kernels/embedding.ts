// Launcher for the embedding gather (shaders/embedding.wgsl): word rows from an f16/f32 table (plain or
// row-chunked for tables beyond the max storage binding), plus position rows from ids or one constant position.
// Not a one-hot matmul; ids outside the table give a zero word row.

import type { GpuContext } from "../gpu/context.ts";
import { type RowChunkedTensor, Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

export interface EmbeddingOptions {
  /** Number of ids (output rows). */
  rows: number;
  /** Element offset of the first id in `ids`. */
  idOff?: number;
  /**
   * Batched rows: `rows` = batch · rowsPerBatch; row b·rowsPerBatch + i takes id idOff + b·idBatchStride + i and
   * position posOff + i (positions shared by the batch). Default: one batch of `rows`.
   */
  rowsPerBatch?: number;
  idBatchStride?: number;
  /** Position table [maxPos, cols] added to every row at its position. */
  posTable?: Tensor;
  /** Position ids (i32, one per row, from `posOff`)... */
  posIds?: Tensor;
  posOff?: number;
  /** ...or one position for every row (a decode step). */
  pos?: number;
  out?: Tensor;
}

function asChunks(w: Tensor | RowChunkedTensor): RowChunkedTensor {
  if (!(w instanceof Tensor)) return w;
  check(w.shape.length === 2, "embedding", () => `table must be 2-D, got [${w.shape}]`);
  return {
    rows: w.shape[0],
    cols: w.shape[1],
    dtype: w.dtype,
    chunks: [{ row0: 0, rows: w.shape[0], tensor: w }],
  };
}

/** out[r] = table[ids[r]] (+ posTable[pos(r)]), f32 [rows, cols]. */
export function embedding(
  ctx: GpuContext,
  ids: Tensor,
  table: Tensor | RowChunkedTensor,
  o: EmbeddingOptions,
): Tensor {
  const t = asChunks(table);
  const { rows } = o, cols = t.cols;
  check(ids.dtype === "i32", "embedding", () => `ids must be i32, got ${ids.dtype}`);
  const rpb = o.rowsPerBatch ?? rows, idBs = o.idBatchStride ?? 0;
  check(rows % rpb === 0, "embedding", () => `rows ${rows} are not a multiple of rowsPerBatch ${rpb}`);
  check(
    (o.idOff ?? 0) + (rows / rpb - 1) * idBs + rpb <= ids.size,
    "embedding",
    () => `ids [${ids.shape}] too small for ${rows} rows`,
  );
  check(t.dtype === "f16" || t.dtype === "f32", "embedding", () => `table dtype ${t.dtype} is not f16/f32`);
  const pt = o.posTable;
  if (pt) {
    check(
      pt.shape[pt.shape.length - 1] === cols,
      "embedding",
      () => `position table [${pt.shape}] is not [*, ${cols}]`,
    );
    check(
      pt.dtype === "f16" || pt.dtype === "f32",
      "embedding",
      () => `position table dtype ${pt.dtype} is not f16/f32`,
    );
    check(
      !!o.posIds !== (o.pos !== undefined),
      "embedding",
      "give either posIds or pos with a position table",
    );
    if (o.posIds) {
      check(
        o.posIds.dtype === "i32" && (o.posOff ?? 0) + rpb <= o.posIds.size,
        "embedding",
        "posIds must be i32 [rows]",
      );
    } else {check(
        o.pos! >= 0 && (o.pos! + 1) * cols <= pt.size,
        "embedding",
        () => `position ${o.pos} outside the table`,
      );}
  }
  const out = o.out ?? ctx.empty([rows, cols], "f32");
  check(out.dtype === "f32" && out.size >= rows * cols, "embedding", () => `out [${out.shape}] too small`);
  t.chunks.forEach((ch, i) => {
    const first = i === 0;
    const mode = !first ? "ACCUM" : !pt ? "" : o.posIds ? "POS" : "POS_CONST";
    const bufs = [
      ids,
      ch.tensor,
      ...(mode === "POS" ? [o.posIds!, pt!] : mode === "POS_CONST" ? [pt!] : []),
      out,
    ];
    const k = ctx.kernel({
      name: first ? "embedding" : "embedding_accum",
      shader: "embedding.wgsl",
      defines: { W_F16: t.dtype === "f16", P_F16: pt?.dtype === "f16", ...(mode ? { [mode]: 1 } : {}) },
      bindings: [...bufs.slice(0, -1).map(() => "read" as const), "write"],
    });
    const params = [rows, cols, ch.row0, ch.rows, o.idOff ?? 0, o.pos ?? 0, o.posOff ?? 0, rpb, idBs];
    ctx.dispatch(k, params, bufs, grid1d(rows * cols, 256));
  });
  return out;
}
