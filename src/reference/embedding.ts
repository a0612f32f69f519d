// Plain TypeScript twin of shaders/embedding.wgsl: word rows by id plus position rows. Not fast.

/** out[r] = table[ids[r]] (zero row for ids outside the table) + posTable[pos[r]] (when given). */
export function embeddingRef(
  ids: ArrayLike<number>,
  table: ArrayLike<number>,
  cols: number,
  pos?: { table: ArrayLike<number>; ids: ArrayLike<number> },
): Float32Array {
  const rows = ids.length, tableRows = table.length / cols;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const id = ids[r];
      let v = id >= 0 && id < tableRows ? table[id * cols + c] : 0;
      if (pos) v += pos.table[pos.ids[r] * cols + c];
      out[r * cols + c] = v;
    }
  }
  return out;
}
