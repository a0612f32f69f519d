// `deno run --allow-read tools/pick_variants.ts --gemv FILE --gemm FILE --sr FILE --rows FILE [--attn FILE] [--m 1|8]`:
// reads bench records (out/bench.json of `bench --only gemv`, `--only gemm`, `--only local_attention`, `--only
// choices`, `--only decode_attention`) and
// prints shell assignments of the
// fastest variants measured there: COGVIEW2_GEMV (lowest `gemv_step_best_ms` at M rows, f16 weights: the decode step
// that predicts tokens/s), the GEMM with the lowest total time over the SR stages' shapes (4096³ left out) as a
// COMMENT only — the isolated bench ranked gemm_tiles_il first in sessions 6 and 8 while inside the published stages
// gemm_tiles_bk16_pad_w8_1buf ran 29-35% faster (b8 DSR + LoPAR 36.95 vs 49.19 s; 48.56 s with the il pick in
// session 8), so the published runs keep choices.ts's GEMM unless a part sets COGVIEW2_GEMM itself — and
// COGVIEW2_SR_ATTENTION (the faster SR local attention
// path at the published width), COGVIEW2_ROW_REDUCE_DECODE (layer norm / softmax rows of at most 8 rows, the decode
// steps'; the SR stages' rows keep the table's), COGVIEW2_ATTENTION_SPLIT and COGVIEW2_ATTENTION_WG (the decode
// attention's key splits and workgroup width with the lowest summed time over the measured key counts at batch M;
// split 1 is the one-workgroup kernel).
// tools/device_bench.sh uses it to run the published bench on a lent GPU with the best
// variants of the same call; the figures then go into src/kernels/choices.ts by hand. Prints nothing for a file that
// is missing or holds no such entries.
interface Result {
  name: string;
  params: Record<string, string | number | boolean>;
  value: number;
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function results(file: string | undefined): Result[] {
  if (!file) return [];
  try {
    const rec = JSON.parse(Deno.readTextFileSync(file));
    return Array.isArray(rec) ? rec : rec.results ?? [];
  } catch {
    return [];
  }
}

/** The GEMV variant with the lowest decode-step time at M rows and f16 weights. */
export function pickGemv(rs: Result[], M: number): string | null {
  const best =
    rs.filter((r) => r.name === "gemv_step_best_ms" && Number(r.params.M) === M && r.params.w === "f16")
      .sort((a, b) => a.value - b.value)[0];
  return best ? String(best.params.variant) : null;
}

/** The GEMM variant with the lowest summed time (2·M·N·K / rate) over every measured shape but 4096³. */
export function pickGemm(rs: Result[]): string | null {
  const total = new Map<string, { s: number; shapes: Set<string> }>();
  const shapes = new Set<string>();
  for (const r of rs) {
    if (r.name !== "gemm_variant_gflops" || String(r.params.shape).startsWith("4096") || !(r.value > 0)) {
      continue;
    }
    const shape = String(r.params.shape);
    shapes.add(shape);
    const s = 2 * Number(r.params.M) * Number(r.params.N) * Number(r.params.K) / (r.value * 1e9);
    const t = total.get(String(r.params.kernel)) ?? { s: 0, shapes: new Set() };
    t.s += s;
    t.shapes.add(shape);
    total.set(String(r.params.kernel), t);
  }
  let best: [string, number] | null = null;
  for (const [k, t] of total) {
    if (t.shapes.size !== shapes.size) continue; // a variant that could not run every shape is not a choice
    if (!best || t.s < best[1]) best = [k, t.s];
  }
  return best ? best[0] : null;
}

/** The SR local attention path ("query" or "tiles") with the lower summed time over the published-width calls. */
export function pickSrAttention(rs: Result[]): string | null {
  const total = new Map<string, number>();
  for (const r of rs) {
    if (r.name !== "sr_local_attention_ms" || r.params.config !== "published_b8" || !r.params.path) continue;
    total.set(String(r.params.path), (total.get(String(r.params.path)) ?? 0) + r.value);
  }
  const best = [...total].sort((a, b) => a[1] - b[1])[0];
  return best ? best[0] : null;
}

/** The row reduction with the lowest summed time over the decode-shaped rows (at most 8 rows) of the choices bench. */
export function pickRowReduce(rs: Result[]): string | null {
  const total = new Map<string, number>();
  for (const r of rs) {
    if (r.name !== "row_reduce_ms" || Number(r.params.rows) > 8) continue;
    total.set(String(r.params.reduce), (total.get(String(r.params.reduce)) ?? 0) + r.value);
  }
  const best = [...total].sort((a, b) => a[1] - b[1])[0];
  return best ? best[0] : null;
}

/**
 * The decode attention's (workgroup width, key split count) with the lowest summed µs over the key counts measured at
 * batch M (a stand-in for a generation's mean key count); one that was not measured at every key count (skipped: no
 * match with the CPU twin) is not a choice. Records without a width (one width measured) give wg null.
 */
export function pickDecodeAttention(rs: Result[], M: number): { split: number; wg: number | null } | null {
  const total = new Map<string, { us: number; keys: Set<number> }>();
  const keys = new Set<number>();
  for (const r of rs) {
    if (r.name !== "decode_attention_us" || Number(r.params.batch) !== M || !(r.value > 0)) continue;
    const k = Number(r.params.keys), id = `${r.params.wg ?? ""}/${r.params.split}`;
    keys.add(k);
    const t = total.get(id) ?? { us: 0, keys: new Set() };
    t.us += r.value;
    t.keys.add(k);
    total.set(id, t);
  }
  const full = [...total].filter(([, t]) => t.keys.size === keys.size).sort((a, b) => a[1].us - b[1].us);
  if (!full.length) return null;
  const [wg, split] = full[0][0].split("/");
  return { split: Number(split), wg: wg ? Number(wg) : null };
}

if (import.meta.main) {
  const M = Number(flag("--m") ?? 1);
  const gemv = pickGemv(results(flag("--gemv")), M);
  const gemm = pickGemm(results(flag("--gemm")));
  const sr = pickSrAttention(results(flag("--sr")));
  const rows = pickRowReduce(results(flag("--rows")));
  if (gemv) console.log(`export COGVIEW2_GEMV=${gemv}`);
  if (gemm) console.log(`# isolated gemm bench winner: ${gemm} (not exported: see the header)`);
  if (sr) console.log(`export COGVIEW2_SR_ATTENTION=${sr}`);
  if (rows) console.log(`export COGVIEW2_ROW_REDUCE_DECODE=${rows}`);
  const attn = pickDecodeAttention(results(flag("--attn")), M);
  if (attn) console.log(`export COGVIEW2_ATTENTION_SPLIT=${attn.split}`);
  if (attn?.wg) console.log(`export COGVIEW2_ATTENTION_WG=${attn.wg}`);
}
