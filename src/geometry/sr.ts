// Geometry of CogView2's two super-resolution models (DSR [96, 496, 4096], iterative SR [16, 3616]): sequence
// layouts, input tokens, position ids, attention masks, the LoPAR re-masking pattern and the local-window shapes, as
// sr_pipeline/ builds them. Plain host-side arrays with no GPU and no model code, so the GPU models (src/models/),
// the stage (src/pipeline/super_resolution.ts), the CPU reference (src/reference/sr.ts), the local-attention kernel
// and the conformance runner all import this one module.

/** The parts of a DSR / iterative-SR config the layouts need (src/models/config.ts SrConfig satisfies it). */
export interface SrLayoutConfig {
  layout: number[];
  kernel_size: number;
  kernel_size2: number;
  max_sequence_length: number;
}

/** First position id of the low-res image in DSR (dsr_sampling.filling_sequence_dsr: arange(513, ...)). */
export const LOWRES_POSITION0 = 513;
/** First position id of the high-res image in both models (arange(1024, ...) in the samplers). */
export const HIGHRES_POSITION0 = 1024;
/** Value of masked attention scores and out-of-grid local-window cells in the original (`- 10000.0 * (1 - mask)`). */
export const MASKED_SCORE = -10000;

/** Integer square root of a square grid's cell count (throws when `n` is not a square). */
export function gridSide(n: number, what: string): number {
  const s = Math.round(Math.sqrt(n));
  if (s * s !== n) throw new Error(`${what}: ${n} is not a square number of tokens`);
  return s;
}

/** Geometry of the DSR layout [textLen, textLen + lowres², textLen + lowres² + highres²]. */
export interface DsrGeometry {
  textLen: number;
  /** Rows using the base attention (text + low-res) = layout[1]. */
  s0: number;
  /** High-res rows = layout[2] - layout[1]. */
  s1: number;
  /** Model input length = layout[2]. */
  seqLen: number;
  lowSide: number;
  highSide: number;
}

export function dsrGeometry(cfg: SrLayoutConfig): DsrGeometry {
  const [textLen, s0, seqLen] = cfg.layout;
  if (cfg.layout.length !== 3) throw new Error(`DSR layout must have 3 entries, got [${cfg.layout}]`);
  const s1 = seqLen - s0;
  const lowSide = gridSide(s0 - textLen, "DSR low-res part");
  const highSide = gridSide(s1, "DSR high-res part");
  if (highSide % lowSide) {
    throw new Error(`DSR high-res side ${highSide} is not a multiple of low-res side ${lowSide}`);
  }
  return { textLen, s0, s1, seqLen, lowSide, highSide };
}

/** Geometry of the iterative-SR layout [textLen, textLen + highres²]. */
export interface ItersrGeometry {
  textLen: number;
  s1: number;
  seqLen: number;
  highSide: number;
}

export function itersrGeometry(cfg: SrLayoutConfig): ItersrGeometry {
  if (cfg.layout.length !== 2) {
    throw new Error(`iterative-SR layout must have 2 entries, got [${cfg.layout}]`);
  }
  const [textLen, seqLen] = cfg.layout;
  const s1 = seqLen - textLen;
  return { textLen, s1, seqLen, highSide: gridSide(s1, "iterative-SR high-res part") };
}

/** One DSR model input (batch element): tokens, position ids, number of pad tokens and the [s0, s0] mask. */
export interface DsrInput {
  tokens: Int32Array;
  positionIds: Int32Array;
  nPad: number;
}

/**
 * The DSR forward input for text ids (the template without `<start_of_image>`) and low-res codes: text left-padded
 * with 0 to layout[0], the low-res codes, then layout[2]-layout[1] `<start_of_image>` slots (the model sees
 * tokens[:, :-1] of the sampler's layout[2]+1 sequence, whose last 3601 entries are all `<start_of_image>`).
 * Text longer than layout[0]-1 keeps its first layout[0]-1 ids (the original asserts n_pad > 0).
 */
export function dsrInput(
  cfg: SrLayoutConfig,
  textIds: ArrayLike<number>,
  lowres: ArrayLike<number>,
  boi: number,
): DsrInput {
  const g = dsrGeometry(cfg);
  const nLow = g.s0 - g.textLen;
  if (lowres.length !== nLow) throw new Error(`DSR expects ${nLow} low-res codes, got ${lowres.length}`);
  const nText = Math.min(textIds.length, g.textLen - 1);
  const nPad = g.textLen - nText;
  const tokens = new Int32Array(g.seqLen).fill(boi);
  const positionIds = new Int32Array(g.seqLen);
  tokens.fill(0, 0, nPad);
  for (let i = 0; i < nText; i++) {
    tokens[nPad + i] = textIds[i];
    positionIds[nPad + i] = i;
  }
  for (let i = 0; i < nLow; i++) {
    tokens[g.textLen + i] = lowres[i];
    positionIds[g.textLen + i] = LOWRES_POSITION0 + i;
  }
  for (let i = 0; i < g.s1; i++) positionIds[g.s0 + i] = HIGHRES_POSITION0 + i;
  return { tokens, positionIds, nPad };
}

/** DSR base-attention mask [s0, s0] (1 = visible): text rows see text only; non-pad rows never see the pads. */
export function dsrMask(cfg: SrLayoutConfig, nPad: number): Float32Array {
  const g = dsrGeometry(cfg);
  const m = new Float32Array(g.s0 * g.s0).fill(1);
  for (let i = 0; i < g.s0; i++) {
    for (let j = 0; j < g.s0; j++) {
      if ((i < g.textLen && j >= g.textLen) || (i >= nPad && j < nPad)) m[i * g.s0 + j] = 0;
    }
  }
  return m;
}

/** One iterative-SR model input: first layout[0] text ids left-padded with 0, then the high-res codes. */
export interface ItersrInput {
  tokens: Int32Array;
  positionIds: Int32Array;
  nPad: number;
}

export function itersrInput(
  cfg: SrLayoutConfig,
  textIds: ArrayLike<number>,
  highres: ArrayLike<number>,
): ItersrInput {
  const g = itersrGeometry(cfg);
  if (highres.length !== g.s1) {
    throw new Error(`iterative SR expects ${g.s1} high-res codes, got ${highres.length}`);
  }
  const nText = Math.min(textIds.length, g.textLen); // text_tokens[..., :16]
  const nPad = g.textLen - nText;
  const tokens = new Int32Array(g.seqLen);
  const positionIds = new Int32Array(g.seqLen);
  for (let i = 0; i < nText; i++) {
    tokens[nPad + i] = textIds[i];
    positionIds[nPad + i] = i;
  }
  for (let i = 0; i < g.s1; i++) {
    tokens[g.textLen + i] = highres[i];
    positionIds[g.textLen + i] = HIGHRES_POSITION0 + i;
  }
  return { tokens, positionIds, nPad };
}

/** Iterative-SR text mask [layout[0]] (1 = visible column): pads are hidden from every row. */
export function itersrMask(cfg: SrLayoutConfig, nPad: number): Float32Array {
  const m = new Float32Array(cfg.layout[0]).fill(1);
  m.fill(0, 0, nPad);
  return m;
}

/** iterative_sr.py's 6×6 `mask_raw`, tiled over the high-res grid. */
// deno-fmt-ignore
export const LOPAR_MASK_RAW: readonly number[] = [
  -1, 0, 1, 2, 3, 4,
  0, -1, 2, -1, -2, 5,
  1, -2, 3, 4, 5, 6,
  2, 3, 4, 5, -1, 1,
  3, -1, -2, 0, -1, 2,
  4, 5, 6, 1, 3, -2,
];
/** Per-round top-k of iterative_sr.py, indexed by mask_ratio (1..6 used). */
export const LOPAR_TOPKS: readonly number[] = [60, 40, 40, 40, 20, 20, 10];
export const LOPAR_ROUNDS = 6;

/**
 * Positions (0/1 per high-res cell) re-masked in round `maskRatio` (1..6): LOPAR_MASK_RAW tiled over the side×side
 * grid (the original's view(1,6,1,6).expand(10,6,10,6) for side 60) ≥ maskRatio, intersected with an optional
 * input mask (non-zero = may be re-predicted).
 */
export function loparRoundMask(side: number, maskRatio: number, inputMask?: ArrayLike<number>): Uint8Array {
  if (!Number.isInteger(maskRatio) || maskRatio < 1 || maskRatio > LOPAR_ROUNDS) {
    throw new Error(`LoPAR round must be 1..${LOPAR_ROUNDS}, got ${maskRatio}`);
  }
  if (inputMask && inputMask.length !== side * side) {
    throw new Error(`LoPAR input mask has ${inputMask.length} entries, expected ${side * side}`);
  }
  const m = new Uint8Array(side * side);
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      const k = i * side + j;
      m[k] = LOPAR_MASK_RAW[(i % 6) * 6 + (j % 6)] >= maskRatio && (!inputMask || inputMask[k]) ? 1 : 0;
    }
  }
  return m;
}

/** Local window of f_similar/f_weighting (non-causal): kH rows × kW columns centred on the query's cell. */
export interface Window {
  kH: number;
  kW: number;
}

/** The DSR/iterative-SR own-grid window: (2·kernel_size-1) rows × kernel_size columns. */
export function ownWindow(cfg: SrLayoutConfig): Window {
  return { kH: 2 * cfg.kernel_size - 1, kW: cfg.kernel_size };
}

/** The DSR cross window on the low-res grid: kernel_size2 × kernel_size2. */
export function crossWindow(cfg: SrLayoutConfig): Window {
  return { kH: cfg.kernel_size2, kW: cfg.kernel_size2 };
}

/** Window entries per query: kH·kW, or the first half in raster order (centre included) when causal. */
export function patchSize(kH: number, kW: number, causal: boolean): number {
  return causal ? ((kH * kW) >> 1) + 1 : kH * kW;
}

/**
 * The additive form of the original's `(scores + logW)·mask − 10000·(1 − mask)` for 0/1 masks: logW where visible,
 * -1e9 where masked (both give exactly zero probability, as every row has a visible entry).
 */
export function maskToAdd(mask: ArrayLike<number>, logW?: ArrayLike<number>): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && mask[i] !== 1) throw new Error(`attention mask value ${mask[i]} is not 0 or 1`);
    out[i] = mask[i] ? (logW ? logW[i] : 0) : -1e9;
  }
  return out;
}
