// LoPAR schedule of the iterative super-resolution (sr_pipeline/iterative_sr.py): which of the 60×60 tokens are
// re-masked with <start_of_image> and re-predicted in each of the 6 rounds, and the top-k of each round.
// Not the SR loop itself (src/pipeline/super_resolution.ts runs it); sampling goes through sampleTopk (strategy.ts).
//
// Round `round` (mask_ratio 1..6): mask = MASK_RAW tiled over the grid ≥ round (AND the optional input mask);
// masked tokens become <start_of_image>, the model predicts all 3600, sampleTopk({ topk: ITERSR_TOPKS[round],
// step: round }) draws them, and only masked positions take the drawn token; the rest keep theirs.

/** The original's 6×6 `mask_raw` (row-major). */
// deno-fmt-ignore
export const MASK_RAW: readonly number[] = [
  -1, 0, 1, 2, 3, 4,
  0, -1, 2, -1, -2, 5,
  1, -2, 3, 4, 5, 6,
  2, 3, 4, 5, -1, 1,
  3, -1, -2, 0, -1, 2,
  4, 5, 6, 1, 3, -2,
];

/** `topks` of iterative_sr.py, indexed by mask_ratio (index 0 unused). */
export const ITERSR_TOPKS: readonly number[] = [60, 40, 40, 40, 20, 20, 10];

/** mask_ratio runs 1..LOPAR_ROUNDS. */
export const LOPAR_ROUNDS = 6;

/** MASK_RAW tiled over a side×side grid (the original: view(1,6,1,6).expand(10,6,10,6) for side 60). */
export function tiledMaskRaw(side = 60): Int8Array {
  const out = new Int8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) out[y * side + x] = MASK_RAW[(y % 6) * 6 + (x % 6)];
  }
  return out;
}

/**
 * The positions re-predicted in round `round` (1..6): 1 where tiled mask_raw ≥ round (and inputMask, when given,
 * is non-zero there), else 0.
 */
export function loparMask(round: number, inputMask?: ArrayLike<number>, side = 60): Uint8Array {
  if (!Number.isInteger(round) || round < 1 || round > LOPAR_ROUNDS) {
    throw new Error(`LoPAR round must be 1..${LOPAR_ROUNDS}, got ${round}`);
  }
  if (inputMask && inputMask.length !== side * side) {
    throw new Error(`input mask has ${inputMask.length} entries, expected ${side * side}`);
  }
  const raw = tiledMaskRaw(side);
  const out = new Uint8Array(side * side);
  for (let i = 0; i < out.length; i++) out[i] = raw[i] >= round && (!inputMask || inputMask[i]) ? 1 : 0;
  return out;
}

/** Top-k of round `round` (1..6). */
export function loparTopk(round: number): number {
  if (!Number.isInteger(round) || round < 1 || round > LOPAR_ROUNDS) {
    throw new Error(`LoPAR round must be 1..${LOPAR_ROUNDS}, got ${round}`);
  }
  return ITERSR_TOPKS[round];
}

/** tokens[i] = sampled[i] where mask[i] is set (the original's `tokens[unfixed] = new_tokens[unfixed]`), in place. */
export function applyRound(
  tokens: Int32Array,
  sampled: ArrayLike<number>,
  mask: ArrayLike<number>,
): Int32Array {
  if (tokens.length !== sampled.length || tokens.length !== mask.length) {
    throw new Error(`applyRound: lengths differ (${tokens.length}, ${sampled.length}, ${mask.length})`);
  }
  for (let i = 0; i < tokens.length; i++) if (mask[i]) tokens[i] = sampled[i];
  return tokens;
}
