// The "windows" matmul schedule for CPU adapters (lavapipe/llvmpipe): C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with
// W a constant weight [N,K] (f32, packed f16 or int8 with per-group scales), repacked once (shaders/matmul_pack.wgsl)
// and cached. int8 stays int8 in the packed copy (16 values per lane per step, the group scales interleaved) and is
// dequantised in registers.
//
// Why it looks like this (Mesa 22.3 llvmpipe, measured with the LLVM IR it emits, see shaders/README.md):
// every buffer load in a loop is a per-lane gather; a storage-buffer gather is a per-lane loop with branches
// (~4 ns per element), a uniform-buffer gather is branchless (extract index, load, insert: ~2.7 cycles per
// 32-bit element, bound by the int<->vector transfer pipes). Arithmetic is cheap. So both operands are read
// from 64 KiB uniform windows, and each invocation (a SIMD lane) keeps an R x C register tile so that every
// gathered element feeds R or C multiply-adds. A window of A holds RA rows of one K-chunk; the W windows hold
// groups of 8 rows (one per lane) laid out so the 8 lanes read 128 contiguous bytes per step. K longer than a
// window's chunk is split into chunks whose partial sums accumulate in C.
//
// The WGSL is generated (the tile is unrolled: R x C accumulators, one binding per W window) and compiled once
// per (tile, dtype, epilogue) shape, through GpuContext like every kernel: the windows are "uniform" bindings whose
// dynamic offsets each dispatch gives, so one bind group serves every window of a buffer set.

import { type Access, f32, type GpuContext } from "../gpu/context.ts";
import { type Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";

const WINDOW_WORDS = 16384; // 64 KiB: WebGPU's default (and lavapipe's) maxUniformBufferBindingSize
const MAX_CHUNK = 1024; // K elements per chunk (A window: >= 16 rows)
const LANES = 8;

/** Operands the schedule accepts (validated by the caller, src/kernels/matmul.ts). */
export interface WindowsMatmul {
  M: number;
  N: number;
  K: number;
  lda: number;
  aOff: number;
  ldw: number;
  wOff: number;
  ldc: number;
  cOff: number;
  alpha: number;
  bias?: Tensor;
  biasOff: number;
  gelu: boolean;
  resid?: Tensor;
  rOff: number;
  ldr: number;
  /** The bias is indexed by output row instead of column (convolutions: C = [cout, pixels]). */
  biasRow?: boolean;
  /** W already in the packed layout (e.g. im2col'ed pixels, src/kernels/conv2d.ts); `w` is then unused. */
  packed?: Tensor;
  /** W is a constant weight: its packed copy is cached. Otherwise W is packed for this call only. */
  constantW?: boolean;
  /** W is stored [K, N] instead of [N, K] (f32 only; packed per call). */
  wKN?: boolean;
}

/**
 * K split into equal chunks of at most MAX_CHUNK elements (a multiple of 8, of 16 for f16, of the group for int8
 * weights: `group` > 0), or null.
 */
export function windowsChunk(K: number, f16: boolean, group = 0): number | null {
  const q = group > 0 ? Math.max(16, group) : f16 ? 16 : 8;
  if (K <= MAX_CHUNK) return K % q === 0 ? K : null;
  for (let n = Math.ceil(K / MAX_CHUNK); n <= K / 256; n++) {
    if (K % n === 0 && (K / n) % q === 0) return K / n;
  }
  return null;
}

/** Whether the schedule can run this shape (K chunks exist, offsets/strides word-aligned for the packing). */
export function windowsApplies(
  o: { K: number; ldw: number; wOff: number; f16: boolean; group?: number },
): boolean {
  const g = o.group ?? 0;
  if (windowsChunk(o.K, o.f16, g) === null) return false;
  if (g > 0) return g % 16 === 0 && o.ldw % g === 0 && o.wOff % g === 0;
  return !o.f16 || (o.ldw % 2 === 0 && o.wOff % 2 === 0);
}

/** The tile and window geometry for one shape. */
export interface WindowsPlan {
  kc: number; // K elements per chunk
  chunks: number;
  steps: number; // vec4<u32> word steps of weights per chunk
  group: number; // int8 weights: the scale group (0 otherwise)
  ss: number; // int8 weights: scale steps per chunk (4 groups' scales per lane each), before the weight steps
  aStride: number; // floats per A row in the scratch (a multiple of 64: 256-byte aligned rows)
  ra: number; // A rows per window
  r: number; // rows per invocation
  gw: number; // groups of 8 W rows per window
  cpl: number; // groups per window per invocation
  nw: number; // W windows (bindings) per dispatch
  gwx: number; // workgroups along x (gw / cpl)
}

/** W windows one dispatch may bind on this device: uniform bindings per stage less the params and A windows. */
export function windowBudget(ctx: GpuContext): number {
  const l = ctx.gpu.limits;
  return Math.min(l.maxUniformBuffersPerShaderStage, l.maxDynamicUniformBuffersPerPipelineLayout) - 2;
}

/**
 * The tile for one shape; `maxWindows` caps the W windows per dispatch (windowBudget: Dawn allows 12 uniform
 * buffers per stage where wgpu on the same lavapipe allows 15).
 */
export function planWindows(
  M: number,
  N: number,
  K: number,
  f16: boolean,
  group = 0,
  maxWindows = Infinity,
): WindowsPlan {
  const kc = windowsChunk(K, f16, group)!;
  const kcw = group > 0 ? kc / 4 : f16 ? kc / 2 : kc;
  const steps = kcw / 4;
  // Scale steps: 4 groups' scales per step, rounded up to an even count so that every group of 8 rows starts on a
  // 256-byte boundary (a window's dynamic offset must be; the weight steps are a multiple of 4).
  const ss = group > 0 ? 2 * Math.ceil(kc / group / 8) : 0;
  const aStride = Math.ceil(kc / 64) * 64;
  const raMax = Math.floor(WINDOW_WORDS / aStride);
  const r = raMax >= 32 && M >= 32 ? 16 : M > 4 ? 8 : M > 2 ? 4 : M;
  const ra = Math.floor(raMax / r) * r;
  // Groups of 8 W rows per window: as many as fit, but no more than N needs (no work on padding).
  const groups = Math.ceil(N / LANES);
  const gw = Math.max(1, Math.min(Math.floor(WINDOW_WORDS / (32 * (steps + ss))), groups));
  // An 8-column tile per invocation (12 for short A, e.g. decode steps, where A's gathers are few): cpl groups
  // from each of nw windows; cpl divides gw and leaves at least two workgroups along x when it can. Measured on
  // lavapipe: 8x12 is slower than 8x8 at 1024³ (12.4 vs 14 GFLOP/s), 4x12 beats 4x8 for M=4 (10 vs 14 ms).
  const C = r <= 4 ? 12 : 8;
  let cpl = 1;
  for (let d = 2; d <= Math.min(C, Math.max(1, gw / 2)); d++) if (gw % d === 0) cpl = d;
  const nw = Math.max(1, Math.min(Math.floor(C / cpl), Math.ceil(groups / gw), maxWindows));
  return { kc, chunks: K / kc, steps, group, ss, aStride, ra, r, gw, cpl, nw, gwx: gw / cpl };
}

/**
 * The packed operand's layout for N rows of K (planWindows(…, N, K, f16)): ceil(N/8) groups padded to whole windows
 * per chunk; `words` adds one window of slack so that any window starting inside is bindable.
 */
export function packedLayout(
  pl: WindowsPlan,
  N: number,
): { groups: number; groupWords: number; chunkWords: number; words: number } {
  const groups = Math.ceil(Math.ceil(N / LANES) / pl.gw) * pl.gw;
  const groupWords = (pl.steps + pl.ss) * 32;
  const chunkWords = groups * groupWords;
  return { groups, groupWords, chunkWords, words: pl.chunks * chunkWords + WINDOW_WORDS };
}

/** The WGSL of one tile shape (exported for tests and the shader notes). */
export function windowsShader(
  s: {
    r: number;
    nw: number;
    cpl: number;
    f16: boolean;
    /** int8 weights with scale groups of `qg` elements (0: f32/f16). */
    qg?: number;
    bias: boolean;
    biasF16: boolean;
    biasRow: boolean;
    gelu: boolean;
    resid: boolean;
    accum: boolean;
    final: boolean;
  },
): string {
  const L: string[] = [];
  const { r: R, nw: NW, cpl: CPL } = s;
  const QG = s.qg ?? 0;
  L.push(
    `// generated by src/kernels/matmul_windows.ts: R=${R} NW=${NW} CPL=${CPL} f16=${s.f16} int8 group=${QG}`,
  );
  L.push(
    "struct Params { M: u32, N: u32, m0: u32, g0: u32, steps: u32, a4: u32, ldc: u32, c_off: u32, " +
      "bias_off: u32, r_off: u32, ldr: u32, alpha: f32, gw: u32, ss: u32, kgroups: u32 }",
  );
  L.push("@group(0) @binding(0) var<uniform> P: Params;");
  L.push(`@group(0) @binding(1) var<uniform> A: array<vec4<f32>, ${WINDOW_WORDS / 4}>;`);
  for (let j = 0; j < NW; j++) {
    L.push(`@group(0) @binding(${2 + j}) var<uniform> W${j}: array<vec4<u32>, ${WINDOW_WORDS / 4}>;`);
  }
  let b = 2 + NW;
  if (s.bias) {
    L.push(`@group(0) @binding(${b++}) var<storage, read> Bias: array<${s.biasF16 ? "u32" : "f32"}>;`);
  }
  if (s.resid) L.push(`@group(0) @binding(${b++}) var<storage, read> Res: array<f32>;`);
  L.push(`@group(0) @binding(${b}) var<storage, read_write> C: array<f32>;`);
  L.push(`
fn gelu_sat(x: f32) -> f32 {
  let inner = 0.7978845608028654 * x * (1.0 + 0.044715 * x * x);
  let t = clamp(inner, -15.0, 15.0);
  let e = exp(2.0 * t);
  return 0.5 * x * (1.0 + (e - 1.0) / (e + 1.0));
}`);
  if (QG) {
    L.push(`
fn i8x4(p: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(p << 24u, p << 16u, p << 8u, p)) >> vec4<u32>(24u));
}`);
  }
  L.push(`@compute @workgroup_size(${LANES})`);
  L.push(
    "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, " +
      "@builtin(local_invocation_index) lane: u32) {",
  );
  L.push(`  let rb = wg.y * ${R}u;`);
  for (let c = 0; c < CPL; c++) {
    L.push(`  let wb${c} = (wg.x + ${c}u * nwg.x) * (P.steps + P.ss) * 8u + lane;`);
  }
  for (let r = 0; r < R; r++) L.push(`  let ab${r} = (rb + ${r}u) * P.a4;`);
  const acc = (r: number, j: number, c: number) => `acc${r}_${j}_${c}`;
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < NW; j++) {
      for (let c = 0; c < CPL; c++) {
        L.push(`  var ${acc(r, j, c)} = 0.0;`);
      }
    }
  }
  if (QG) {
    // int8: per scale group, each lane's scale (one f32 of its row's scale step), then QG/16 weight steps of 16
    // int8 each; partial dot products are scaled once per step.
    L.push("  for (var kg = 0u; kg < P.kgroups; kg++) {");
    for (let j = 0; j < NW; j++) {
      for (let c = 0; c < CPL; c++) {
        L.push(`    let s${j}_${c} = bitcast<f32>(W${j}[wb${c} + (kg >> 2u) * 8u][kg & 3u]);`);
      }
    }
    L.push(`    for (var t = 0u; t < ${QG / 16}u; t++) {`);
    L.push(`      let st = kg * ${QG / 16}u + t;`);
    for (let j = 0; j < NW; j++) {
      for (let c = 0; c < CPL; c++) L.push(`      let q${j}_${c} = W${j}[wb${c} + (P.ss + st) * 8u];`);
    }
    // One word (4 K-values) of every column at a time: few dequantised values live beside the accumulators.
    for (let u = 0; u < 4; u++) {
      for (let j = 0; j < NW; j++) {
        for (let c = 0; c < CPL; c++) {
          L.push(`      let w${j}_${c}_${u} = i8x4(q${j}_${c}[${u}]) * s${j}_${c};`);
        }
      }
      for (let r = 0; r < R; r++) {
        L.push(`      { let a = A[ab${r} + 4u * st + ${u}u];`);
        for (let j = 0; j < NW; j++) {
          for (let c = 0; c < CPL; c++) L.push(`        ${acc(r, j, c)} += dot(a, w${j}_${c}_${u});`);
        }
        L.push("      }");
      }
    }
    L.push("    }");
    L.push("  }");
  } else {
    L.push("  for (var st = 0u; st < P.steps; st++) {");
    for (let j = 0; j < NW; j++) {
      for (let c = 0; c < CPL; c++) {
        const w = `W${j}[wb${c} + st * 8u]`;
        if (s.f16) {
          L.push(`    let q${j}_${c} = ${w};`);
          L.push(
            `    let w${j}_${c} = vec4<f32>(unpack2x16float(q${j}_${c}.x), unpack2x16float(q${j}_${c}.y));`,
          );
          L.push(
            `    let v${j}_${c} = vec4<f32>(unpack2x16float(q${j}_${c}.z), unpack2x16float(q${j}_${c}.w));`,
          );
        } else {
          L.push(`    let w${j}_${c} = bitcast<vec4<f32>>(${w});`);
        }
      }
    }
    for (let r = 0; r < R; r++) {
      L.push("    {");
      if (s.f16) {
        L.push(`      let a = A[ab${r} + 2u * st];`);
        L.push(`      let b = A[ab${r} + 2u * st + 1u];`);
      } else {
        L.push(`      let a = A[ab${r} + st];`);
      }
      for (let j = 0; j < NW; j++) {
        for (let c = 0; c < CPL; c++) {
          const d = s.f16 ? `dot(a, w${j}_${c}) + dot(b, v${j}_${c})` : `dot(a, w${j}_${c})`;
          L.push(`      ${acc(r, j, c)} += ${d};`);
        }
      }
      L.push("    }");
    }
    L.push("  }");
  }
  for (let j = 0; j < NW; j++) {
    for (let c = 0; c < CPL; c++) {
      L.push(`  let n${j}_${c} = (P.g0 + ${j}u * P.gw + wg.x + ${c}u * nwg.x) * 8u + lane;`);
    }
  }
  for (let r = 0; r < R; r++) {
    L.push(`  let m${r} = P.m0 + rb + ${r}u;`);
    for (let j = 0; j < NW; j++) {
      for (let c = 0; c < CPL; c++) {
        const n = `n${j}_${c}`;
        L.push(`  if (m${r} < P.M && ${n} < P.N) {`);
        L.push(`    let i = P.c_off + m${r} * P.ldc + ${n};`);
        L.push(`    var v = ${acc(r, j, c)} * P.alpha;`);
        if (s.accum) L.push("    v += C[i];");
        if (s.final) {
          if (s.bias) {
            const bi = `P.bias_off + ${s.biasRow ? `m${r}` : n}`;
            L.push(
              s.biasF16
                ? `    let bi = ${bi}; let bp = unpack2x16float(Bias[bi >> 1u]); v += select(bp.x, bp.y, (bi & 1u) == 1u);`
                : `    v += Bias[${bi}];`,
            );
          }
          if (s.gelu) L.push("    v = gelu_sat(v);");
          if (s.resid) L.push(`    v += Res[P.r_off + m${r} * P.ldr + ${n}];`);
        }
        L.push("    C[i] = v;");
        L.push("  }");
      }
    }
  }
  L.push("}");
  return L.join("\n");
}

const states = new WeakMap<GpuContext, { packed: WeakMap<Tensor, { key: string; tensor: Tensor }> }>();

function state(ctx: GpuContext): { packed: WeakMap<Tensor, { key: string; tensor: Tensor }> } {
  let st = states.get(ctx);
  if (!st) states.set(ctx, st = { packed: new WeakMap() });
  return st;
}

/** The compiled kernel of one tile shape (through the context: cached, profiled, bind groups reused). */
function windowsKernel(ctx: GpuContext, spec: Parameters<typeof windowsShader>[0]) {
  const bindings: Access[] = ["uniform"];
  for (let j = 0; j < spec.nw; j++) bindings.push("uniform");
  if (spec.bias) bindings.push("read");
  if (spec.resid) bindings.push("read");
  bindings.push("write");
  return ctx.kernel({ name: "matmul_windows", code: windowsShader(spec), bindings });
}

/** Records the repacking of W (N rows of K, or wKN: stored [K, N], f32 only) into a new tensor. */
function packOperand(
  ctx: GpuContext,
  w: Tensor,
  o: { N: number; K: number; ldw: number; wOff: number; wKN: boolean },
): Tensor {
  const f16 = w.dtype === "f16";
  const g = w.quant?.group ?? 0;
  const pl = planWindows(1, o.N, o.K, f16, g);
  const wr = g > 0 ? 4 : f16 ? 2 : 1; // elements per 32-bit word
  const kcw = pl.kc / wr;
  const { groups, chunkWords, words } = packedLayout(pl, o.N);
  const total = pl.chunks * chunkWords;
  const out = ctx.empty([words], "u32");
  const k = ctx.kernel({
    name: "matmul_pack",
    shader: "matmul_pack.wgsl",
    defines: { TRANS_W: o.wKN, I8: g > 0 },
    bindings: g > 0 ? ["read", "read", "write"] : ["read", "write"],
  });
  const sp = g > 0 ? [pl.ss, pl.kc / g, o.ldw / g, o.wOff / g] : [0, 0, 0, 0];
  const params = [o.N, o.ldw / wr, o.wOff / wr, kcw, pl.steps, groups, total, pl.chunks, ...sp];
  const inputs = g > 0 ? [w, w.quant!.scales] : [w];
  const groupBytes = (pl.steps + pl.ss) * 32 * 4;
  if (out.byteLength <= ctx.maxBinding) {
    ctx.dispatch(k, [...params, 0, groups * 8, 0, 0], [...inputs, out], [
      Math.ceil((groups * 8) / 64),
      pl.steps + pl.ss,
      pl.chunks,
    ]);
    return out;
  }
  // The packed copy exceeds one binding (e.g. a row block of a vocabulary table plus its padding and slack): pack
  // it in pieces of whole groups of one chunk, each writing a bound range of at most maxBinding bytes that starts
  // on a 256-byte boundary (o_base: the vec4 index the range starts at).
  const align = ctx.gpu.limits.minStorageBufferOffsetAlignment;
  const per = Math.floor((ctx.maxBinding - align) / groupBytes);
  check(
    per >= 1,
    "matmul_pack",
    () => `one group of 8 rows (${groupBytes} bytes) exceeds the max storage binding`,
  );
  for (let ch = 0; ch < pl.chunks; ch++) {
    for (let g0 = 0; g0 < groups; g0 += per) {
      const g1 = Math.min(groups, g0 + per);
      const start = out.byteOffset + (ch * groups + g0) * groupBytes;
      const at = Math.floor(start / align) * align;
      const end = out.byteOffset + (ch * groups + g1) * groupBytes;
      ctx.dispatch(
        k,
        [...params, g0 * 8, g1 * 8, ch, (at - out.byteOffset) / 16],
        [...inputs, { buffer: out.buffer, offset: at, size: end - at }],
        [Math.ceil(((g1 - g0) * 8) / 64), pl.steps + pl.ss, 1],
      );
    }
  }
  return out;
}

/**
 * The packed copy of a constant weight (made on first use, then cached with the weight tensor): per chunk,
 * ceil(N/8) groups padded to whole windows, plus one window of slack so any window start inside is bindable.
 */
export function packedWeight(
  ctx: GpuContext,
  w: Tensor,
  o: { N: number; K: number; ldw: number; wOff: number },
): Tensor {
  const pl = planWindows(1, o.N, o.K, w.dtype === "f16", w.quant?.group ?? 0);
  const st = state(ctx);
  const key = `${o.N},${o.K},${o.ldw},${o.wOff},${pl.kc},${pl.gw}`;
  const hit = st.packed.get(w);
  if (hit && hit.key === key && !hit.tensor.released) return hit.tensor;
  const out = packOperand(ctx, w, { ...o, wKN: false });
  hit?.tensor.release();
  st.packed.set(w, { key, tensor: out });
  w.attach(out); // released with the weight (a model unloaded by stage residency leaves no packed copy behind)
  return out;
}

/** Records C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with the windows schedule; returns C. */
export function matmulWindows(
  ctx: GpuContext,
  a: Tensor,
  w: Tensor | null,
  c: Tensor,
  o: WindowsMatmul,
): Tensor {
  const { M, N, K } = o;
  const f16 = !o.packed && w!.dtype === "f16";
  const group = o.packed ? 0 : w!.quant?.group ?? 0;
  check(!o.wKN || group === 0, "matmul_windows", "int8 W must be [N,K]");
  check(
    windowsApplies({ K, ldw: o.ldw, wOff: o.wOff, f16, group }),
    "matmul_windows",
    () => `unsupported K=${K}`,
  );
  const pl = planWindows(M, N, K, f16, group, windowBudget(ctx));
  const transient = !o.packed && !o.constantW;
  const packed = o.packed ??
    (o.constantW
      ? packedWeight(ctx, w!, { N, K, ldw: o.ldw, wOff: o.wOff })
      : packOperand(ctx, w!, { N, K, ldw: o.ldw, wOff: o.wOff, wKN: !!o.wKN }));

  // A, chunk by chunk, into rows of aStride floats (256-byte aligned, so every window offset is bindable).
  const scratch = ctx.empty([pl.chunks * M * pl.aStride + WINDOW_WORDS], "f32");
  const aBase = a.byteOffset + o.aOff * 4;
  if (pl.chunks === 1 && pl.aStride === K && o.lda === K) {
    ctx.copy({ buffer: a.buffer, offset: aBase, size: M * K * 4 }, scratch, M * K * 4);
  } else {
    const rowBytes = pl.kc * 4;
    for (let ch = 0; ch < pl.chunks; ch++) {
      for (let m = 0; m < M; m++) {
        ctx.copy(
          { buffer: a.buffer, offset: aBase + (m * o.lda + ch * pl.kc) * 4, size: rowBytes },
          {
            buffer: scratch.buffer,
            offset: scratch.byteOffset + ((ch * M + m) * pl.aStride) * 4,
            size: rowBytes,
          },
          rowBytes,
        );
      }
    }
  }

  const groups = Math.ceil(N / LANES);
  const colBlocks = Math.ceil(groups / (pl.nw * pl.gw));
  const mWindows = Math.ceil(M / pl.ra);
  const { groups: packedGroups, chunkWords, groupWords } = packedLayout(pl, N);
  const windowBytes = WINDOW_WORDS * 4;
  const buffers = [ctx.uniformWindow(scratch, windowBytes)];
  for (let j = 0; j < pl.nw; j++) buffers.push(ctx.uniformWindow(packed, windowBytes));
  const storage = [...(o.bias ? [o.bias] : []), ...(o.resid ? [o.resid] : []), c];
  for (let ch = 0; ch < pl.chunks; ch++) {
    const kernel = windowsKernel(ctx, {
      r: pl.r,
      nw: pl.nw,
      cpl: pl.cpl,
      f16,
      qg: group,
      bias: !!o.bias,
      biasF16: o.bias?.dtype === "f16",
      biasRow: !!o.biasRow,
      gelu: o.gelu,
      resid: !!o.resid,
      accum: ch > 0,
      final: ch === pl.chunks - 1,
    });
    for (let mi = 0; mi < mWindows; mi++) {
      const m0 = mi * pl.ra;
      const rows = Math.min(pl.ra, M - m0);
      for (let bi = 0; bi < colBlocks; bi++) {
        const g0 = bi * pl.nw * pl.gw;
        const offs = [scratch.byteOffset + ((ch * M + m0) * pl.aStride) * 4];
        for (let j = 0; j < pl.nw; j++) {
          const g = g0 + j * pl.gw;
          offs.push(packed.byteOffset + (ch * chunkWords + (g < packedGroups ? g : 0) * groupWords) * 4);
        }
        ctx.dispatch(
          kernel,
          [
            M,
            N,
            m0,
            g0,
            pl.steps,
            pl.aStride / 4,
            o.ldc,
            o.cOff,
            o.biasOff,
            o.rOff,
            o.ldr,
            f32(o.alpha),
            pl.gw,
            pl.ss,
            group > 0 ? pl.kc / group : 0,
          ],
          [...buffers, ...storage],
          [pl.gwx, Math.ceil(rows / pl.r), 1],
          offs,
        );
      }
    }
  }
  // Back to the pool: later users are recorded after these dispatches, so they cannot overtake them.
  scratch.release();
  if (transient) packed.release();
  return c;
}
