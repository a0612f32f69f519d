// The tensor-core GEMM variants (gemm_sgmat*, shaders/gemm_sgmat.wgsl through Dawn's
// chromium-experimental-subgroup-matrix) against the CPU matmul twin, and what can be checked without tensor cores.
//
// The real kernel runs only where the device has the feature with an f16->f32 configuration: Dawn on a GPU with
// Vulkan cooperative matrices and COGVIEW2_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia,allow_unsafe_apis
// (tools/device_bench.sh part gemm_f16 runs this file so). Everywhere else (every machine CI runs on: lavapipe has
// no cooperative matrices for Dawn, Deno's wgpu no subgroup matrices) that test is IGNORED with the reason printed;
// this is accepted for this kernel only, because no machine here can run it. What runs everywhere: the
// configuration parsing and choice on synthetic adapter lists, the refusal by name, the WGSL the launcher generates
// for a synthetic configuration (string checks), that WGSL compiled with only the subgroup-matrix types and builtins
// stood in (Dawn here), and the whole kernel with the four subgroup-matrix operations emulated in plain WGSL (define
// EMU) against the CPU twin.
import assert from "node:assert/strict";
import {
  GEMM_ENV,
  GEMM_VARIANT_NAMES,
  GEMM_VARIANTS,
  gemmTiles,
  type GemmTiling,
  type GemmVariant,
  gemmVariantUnsupported,
  pickSubgroupMatrixConfig,
  sgmatDefines,
  sgmatPlan,
} from "../../src/kernels/gemm.ts";
import { gpuGemmPick, matmul, TENSOR_CORE_GEMM, TENSOR_CORE_GEMMS } from "../../src/kernels/matmul.ts";
import { gpuGemmVariant } from "../../src/kernels/choices.ts";
import { tensorCoreMode, tensorCoresRequested } from "../../src/gpu/env.ts";
import { dawnFlags } from "../../src/gpu/backends.ts";
import { GpuContext, type KernelSpec } from "../../src/gpu/context.ts";
import {
  formatSubgroupMatrixConfig,
  parseSubgroupMatrixConfigs,
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixConfig,
} from "../../src/gpu/device.ts";
import { preprocess } from "../../src/gpu/shader_source.ts";
import { geluRef, matmulRef } from "../../src/reference/matmul.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

const SGMAT = GEMM_VARIANT_NAMES.filter((v) => (GEMM_VARIANTS[v] as GemmTiling).sgmat);
const cfg = (componentType: string, resultComponentType: string, M: number, N: number, K: number) => ({
  componentType,
  resultComponentType,
  M,
  N,
  K,
});
const f16 = (x: Float32Array) => f16BitsToF32(f32ToF16Bits(x));

const shared = await sharedContext();
const realWhy = gemmVariantUnsupported(shared, "gemm_sgmat");
if (realWhy) {
  console.log(`gemm_sgmat_test: the real tensor-core kernel is not tested on this device: ${realWhy}`);
}

/**
 * C = 0.5·A·Wᵀ + bias, GELU, + R on odd sizes (edge tiles both ways, K 2.25 slices of 32, K % 8 = 4), batch 2 with
 * padded strides and offsets, against the CPU twin with A rounded to f16 as the kernel stages it (W f16, or f32
 * rounded to f16). Tolerance atol 5e-4 + rtol 1e-3: exact f16 products summed in f32 in another order (sums of 72
 * products of O(1)·O(0.2) terms, results O(2)); f16 results: 2e-2 + 1e-2. The precise variants (A, and f32 W, split
 * into f16 hi + lo) against the twin on the unrounded inputs (W f16 as stored), atol 1e-5 + rtol 1e-5 emulated: hi +
 * lo is the input to ~2⁻²² relative (errors ~1.5e-6 here), while rounding A to f16 alone errs by up to ~2e-3 on these
 * sizes; on tensor cores 1e-4 + 1e-4, for their sums (measured on NVIDIA's earlier ones: aligned to the largest
 * exponent with truncated significands, up to ~17 units of 2⁻²³ of the largest term per 16-deep product).
 */
async function checkAgainstTwin(
  ctx: GpuContext,
  variant: GemmVariant,
  dtype: "f16" | "f32",
  emulate?: SubgroupMatrixConfig,
): Promise<void> {
  const M = 133, N = 261, K = 72, batch = 2, lda = K + 8, ldc = N + 3, aBs = M * lda + 8;
  const a = randn(batch * aBs, 61, 1), wv = randn(N * K, 62, 0.2), bias = randn(N, 63, 0.5);
  const resid = randn(batch * M * ldc, 64, 1);
  const at = ctx.upload(a, [a.length]), wt = ctx.upload(wv, [N, K], dtype), bt = ctx.upload(bias, [N], "f16");
  const rt = ctx.upload(resid, [resid.length]);
  try {
    const o = {
      M,
      N,
      K,
      batch,
      lda,
      ldc,
      aOff: 8,
      aBatchStride: aBs,
      alpha: 0.5,
      bias: bt,
      gelu: true,
      resid: rt,
      tiling: variant,
      sgmatEmulate: emulate,
    };
    const c = gemmTiles(ctx, at, wt, { ...o, out: ctx.empty([batch * M * ldc]) });
    const got = await ctx.readF32(c);
    c.release();
    for (let b = 0; b < batch; b++) {
      const dense = new Float32Array(M * K);
      for (let m = 0; m < M; m++) {
        dense.set(a.subarray(b * aBs + 8 + m * lda, b * aBs + 8 + m * lda + K), m * K);
      }
      const precise = !!(GEMM_VARIANTS[variant] as GemmTiling).precise;
      const wIn = dtype === "f16" || !precise ? f16(wv) : wv;
      const base = matmulRef(precise ? dense : f16(dense), wIn, { M, N, K, alpha: 0.5, bias: f16(bias) });
      const have = got.subarray(b * M * ldc, (b + 1) * M * ldc), want = new Float32Array(M * ldc);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          want[m * ldc + n] = geluRef(base[m * N + n]) + resid[b * M * ldc + m * ldc + n];
        }
        for (let n = N; n < ldc; n++) want[m * ldc + n] = have[m * ldc + n]; // padding columns: not written
      }
      const what = `${variant}${
        emulate ? ` emulated ${formatSubgroupMatrixConfig(emulate)}` : ""
      } ${dtype} W b=${b}`;
      // f16 results round every partial sum (2⁻¹¹ relative, sums O(2)): the f16 tolerance of the gemm bench.
      const f16Result =
        (emulate ?? sgmatPlan(ctx, GEMM_VARIANTS[variant])!.config).resultComponentType === "f16";
      assertClose(
        what,
        have,
        want,
        f16Result
          ? { atol: 2e-2, rtol: 1e-2 }
          : precise
          ? (emulate ? { atol: 1e-5, rtol: 1e-5 } : { atol: 1e-4, rtol: 1e-4 })
          : { atol: 5e-4, rtol: 1e-3 },
      );
    }
  } finally {
    [at, wt, bt, rt].forEach((t) => t.release());
  }
}

Deno.test("subgroup matrix configurations: parsed into typed data (junk left out), empty where the adapter lists none", () => {
  const raw = [
    cfg("f16", "f32", 16, 16, 16),
    { componentType: "u8", resultComponentType: "i32", M: 16, N: 8, K: 32, extra: 1 },
    { componentType: "f16", resultComponentType: "f32", M: 0, N: 8, K: 8 }, // not a shape
    { componentType: "f16", M: 8, N: 8, K: 8 }, // no result type
    null,
  ];
  assert.deepEqual(parseSubgroupMatrixConfigs(raw), [
    cfg("f16", "f32", 16, 16, 16),
    cfg("u8", "i32", 16, 8, 32),
  ]);
  assert.deepEqual(parseSubgroupMatrixConfigs(undefined), []);
  assert.deepEqual(parseSubgroupMatrixConfigs(42), []);
  assert.equal(formatSubgroupMatrixConfig(cfg("f16", "f32", 16, 8, 16)), "f16->f32 16x8x16");
  // This adapter: the feature enabled only where listed, configurations only with it (lavapipe, wgpu: none).
  const g = shared.gpu;
  if (!g.adapterFeatures.includes(SUBGROUP_MATRIX_FEATURE)) {
    assert.equal(g.hasSubgroupMatrix, false);
    assert.deepEqual(g.subgroupMatrixConfigs, []);
  }
  if (g.hasSubgroupMatrix) assert.ok(g.hasSubgroups, "subgroup matrices come with subgroups");
});

Deno.test("pickSubgroupMatrixConfig: f16->f32 with M | 32, N | 64, K | the slice; the most work per operation", () => {
  // NVIDIA-like (the order Vulkan lists them in, f16 results first).
  const nvidia = [
    cfg("f16", "f16", 16, 16, 16),
    cfg("f16", "f32", 16, 8, 8),
    cfg("f16", "f32", 16, 8, 16),
    cfg("f16", "f32", 16, 16, 16),
    cfg("u8", "i32", 16, 16, 32),
  ];
  assert.deepEqual(pickSubgroupMatrixConfig(nvidia), cfg("f16", "f32", 16, 16, 16));
  // Same work per operation: the wider N.
  assert.deepEqual(
    pickSubgroupMatrixConfig([cfg("f16", "f32", 16, 8, 16), cfg("f16", "f32", 8, 16, 16)]),
    cfg("f16", "f32", 8, 16, 16),
  );
  // Apple-like 8×8×8.
  assert.deepEqual(
    pickSubgroupMatrixConfig([
      cfg("f32", "f32", 8, 8, 8),
      cfg("f16", "f16", 8, 8, 8),
      cfg("f16", "f32", 8, 8, 8),
    ]),
    cfg("f16", "f32", 8, 8, 8),
  );
  // No f32 result: the f16 one (per-slice f16 sums folded into f32).
  assert.deepEqual(
    pickSubgroupMatrixConfig([cfg("f16", "f16", 16, 16, 16), cfg("f32", "f32", 8, 8, 8)]),
    cfg("f16", "f16", 16, 16, 16),
  );
  // None usable: f32 inputs only, K deeper than the slice, M not dividing 32.
  assert.equal(pickSubgroupMatrixConfig([cfg("f32", "f32", 8, 8, 8), cfg("u8", "i32", 16, 16, 32)]), null);
  assert.equal(pickSubgroupMatrixConfig([cfg("f16", "f32", 16, 16, 64)]), null);
  assert.equal(pickSubgroupMatrixConfig([cfg("f16", "f32", 16, 16, 16)], 8), null);
  assert.equal(pickSubgroupMatrixConfig([cfg("f16", "f32", 24, 8, 16)]), null);
  assert.equal(pickSubgroupMatrixConfig([]), null);
});

Deno.test("gemm_sgmat*: refused by name without the feature or a usable configuration; COGVIEW2_GEMM fails the same way", () => {
  assert.ok(SGMAT.length >= 1);
  const none = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: false,
    subgroupMatrixConfigs: [],
  });
  const f32Only = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: true,
    hasF16: true,
    subgroupMaxSize: 32,
    subgroupMatrixConfigs: [cfg("f32", "f32", 8, 8, 8)],
  });
  // f16 results need fixed-size subgroups (8-32 here).
  const f16Varying = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: true,
    hasF16: true,
    subgroupMinSize: 8,
    subgroupMaxSize: 32,
    subgroupMatrixConfigs: [cfg("f16", "f16", 16, 16, 16)],
  });
  for (const v of SGMAT) {
    assert.match(
      gemmVariantUnsupported(none, v) ?? "",
      new RegExp(`^${v} needs the ${SUBGROUP_MATRIX_FEATURE} feature, which the .* allow_unsafe_apis`),
    );
    assert.match(
      gemmVariantUnsupported(f32Only, v) ?? "",
      new RegExp(`^${v} needs an f16 subgroup matrix configuration .* reports f32->f32 8x8x8`),
    );
    assert.match(
      gemmVariantUnsupported(f16Varying, v) ?? "",
      (GEMM_VARIANTS[v] as GemmTiling).precise
        // the precise variants need an f32 result (f16 results would round away what the split keeps)
        ? new RegExp(
          `^${v} needs an f16 subgroup matrix configuration \\(f32 result\\) .* reports f16->f16 16x16x16`,
        )
        : new RegExp(
          `^${v} with f16 results \\(f16->f16 16x16x16: .*\\) needs subgroups of one fixed size .* 8-32`,
        ),
    );
  }
  const M = 40, N = 24, K = 36;
  const at = none.upload(randn(M * K, 71, 1), [M, K]), wt = none.upload(randn(N * K, 72, 0.2), [N, K], "f16");
  const saved = Deno.env.get(GEMM_ENV);
  try {
    assert.throws(() => gemmTiles(none, at, wt, { M, N, K, tiling: "gemm_sgmat" }), /gemm_sgmat needs the/);
    Deno.env.set(GEMM_ENV, "gemm_sgmat");
    assert.throws(() => matmul(none, at, wt, { M, N, K, constantW: true }), /gemm_sgmat needs the/);
  } finally {
    if (saved === undefined) Deno.env.delete(GEMM_ENV);
    else Deno.env.set(GEMM_ENV, saved);
    [at, wt].forEach((t) => t.release());
  }
});

Deno.test("gemm_sgmat: the WGSL the launcher generates for a synthetic f16->f32 16x8x16 configuration", () => {
  // A device that claims the feature (simulated): the launcher's kernel spec is captured instead of compiled.
  const fake = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: true,
    hasF16: true,
    hasSubgroups: true,
    subgroupMinSize: 32,
    subgroupMaxSize: 32,
    subgroupMatrixConfigs: [cfg("f16", "f16", 16, 16, 16), cfg("f16", "f32", 16, 8, 16)],
  });
  const plan = sgmatPlan(fake, GEMM_VARIANTS.gemm_sgmat)!;
  assert.match(
    plan.describe,
    /^f16->f32 16x8x16, 128x128 tile, K slices of 32, 8 subgroups of 32, 2x8 result/,
  );
  assert.equal(plan.invocations, 256);
  let spec: KernelSpec | null = null;
  fake.kernel = (s: KernelSpec) => {
    spec = s;
    throw new Error("captured");
  };
  const M = 40, N = 24, K = 36;
  const at = fake.upload(randn(M * K, 81, 1), [M, K]), wt = fake.upload(randn(N * K, 82, 0.2), [N, K], "f16");
  const bt = fake.upload(randn(N, 83, 1), [N]);
  try {
    assert.throws(
      () => gemmTiles(fake, at, wt, { M, N, K, tiling: "gemm_sgmat", bias: bt, gelu: true }),
      /captured/,
    );
  } finally {
    [at, wt, bt].forEach((t) => t.release());
  }
  const s = spec! as KernelSpec;
  assert.equal(s.shader, "gemm_sgmat.wgsl");
  const src = preprocess(s.shader!, s.defines);
  for (
    const line of [
      "enable f16;",
      "enable subgroups;",
      "enable chromium_experimental_subgroup_matrix;",
      "const TM: u32 = 16u;",
      "const TN: u32 = 8u;",
      "const TK: u32 = 16u;",
      "const RM: u32 = 2u;",
      "const RN: u32 = 8u;",
      "const SGMAX: u32 = 32u;",
      "const BK: u32 = 32u;",
      // <component, columns, rows>: left TM×TK, right TK×TN, result TM×TN (Tint's subgroup_matrix<S, T, C, R>)
      "alias Left = subgroup_matrix_left<f16, TK, TM>;",
      "alias Right = subgroup_matrix_right<f16, TN, TK>;",
      "alias Result = subgroup_matrix_result<f32, TN, TM>;",
      "subgroupMatrixLoad<Left, row_major>(&As, off, stride)",
      "subgroupMatrixLoad<Right, col_major>(&Ws, off, stride)",
      "subgroupMatrixMultiplyAccumulate(a, b, c)",
      "subgroupMatrixStore<row_major>(&Cs, off, c, stride)",
      "@builtin(subgroup_id) sid: u32",
      "@compute @workgroup_size(T)",
      "let in_use = true;", // fixed 32-wide subgroups: no branch around the matrix work
      "var<workgroup> As: array<ST, NBUF * A_STEP / SPACK>;",
      "const NBUF: u32 = 1u;",
      "alias ST = f16;",
      "var<storage, read> W: array<vec2<u32>>;",
      "v = gelu_sat(v);",
    ]
  ) assert.ok(src.includes(line), `generated WGSL lacks: ${line}`);
  assert.ok(!src.includes("struct Left"), "no emulation in the real kernel");
  // _v4: vec4<f16> tiles, offsets and strides in vec4.
  const v4 = preprocess("gemm_sgmat.wgsl", { ...s.defines, V4: true });
  for (
    const line of ["alias ST = vec4<f16>;", "const SPACK: u32 = 4u;", "Ws[at / 4u] = bitcast<vec4<f16>>(p);"]
  ) {
    assert.ok(v4.includes(line), `V4 WGSL lacks: ${line}`);
  }
  // The emulated form (EMU) declares no extension at all.
  const emu = preprocess("gemm_sgmat.wgsl", { ...s.defines, EMU: true });
  assert.ok(
    !/^enable /m.test(emu) && emu.includes("struct Left") && !emu.includes("subgroupMatrixLoad<Left"),
  );
});

/** `src` with exactly one `from` replaced by `to` (the test fails if the shader no longer has that line). */
function swap(src: string, from: string | RegExp, to: string): string {
  const n = typeof from === "string"
    ? src.split(from).length - 1
    : (src.match(new RegExp(from, "g")) ?? []).length;
  assert.equal(n, 1, `expected one ${from} in the generated WGSL`);
  return src.replace(from, to);
}

Deno.test({
  name:
    "gemm_sgmat: the real kernel's WGSL compiles here with only the subgroup-matrix types and builtins stood in",
  // enable subgroups + @builtin(subgroup_id) + f16 staging: Dawn here; Deno's wgpu has no subgroups.
  ignore: !shared.gpu.hasSubgroups || !shared.gpu.hasF16,
  async fn() {
    // Every line but the extension, three type aliases and four calls is the shipped kernel's: the staging (f16
    // and vec4<f16> tiles, bitcasts of f16 W, f32 W rounded), subgroup_id, the diagnostic directive, the epilogue.
    const ctx = new GpuContext({ ...shared.gpu, isFallback: false });
    for (const v of SGMAT) {
      for (const wF16 of [true, false]) {
        const t: GemmTiling = GEMM_VARIANTS[v];
        const plan = sgmatPlan(ctx, t, [cfg("f16", "f32", 16, 16, 16)], 32, wF16 ? "f16" : "f32")!;
        let src = preprocess("gemm_sgmat.wgsl", { ...sgmatDefines(plan, wF16), B_C: 3 });
        // Above this adapter's workgroup memory (e.g. the 128x256 tiles, 40-53 KiB here vs lavapipe's 32 KiB): the
        // workgroup arrays shrunk to 64 elements (their indices are all runtime values), the rest compiled as is.
        if (plan.workgroupBytes > ctx.gpu.limits.maxComputeWorkgroupStorageSize) {
          const n = src.match(/^var<workgroup> \w+: array<[^,]+, [^>]+>;$/gm)?.length ?? 0;
          assert.ok(n >= 3, `${v}: expected its workgroup arrays`);
          src = src.replace(
            /^var<workgroup> (\w+): array<([^,]+), [^>]+>;$/gm,
            "var<workgroup> $1: array<$2, 64>;",
          );
        }
        src = swap(src, "enable chromium_experimental_subgroup_matrix;", "");
        src = swap(src, /alias Left = subgroup_matrix_left<[^>]*>;/, "struct Left { x: u32 }");
        src = swap(src, /alias Right = subgroup_matrix_right<[^>]*>;/, "struct Right { x: u32 }");
        src = swap(src, /alias Result = subgroup_matrix_result<[^>]*>;/, "struct Result { x: f32 }");
        src = swap(src, /subgroupMatrixLoad<Left, row_major>\(&As, off, stride\)/, "Left(off + stride)");
        src = swap(src, /subgroupMatrixLoad<Right, col_major>\(&Ws, off, stride\)/, "Right(off + stride)");
        // The precise variants: the lo tiles of A (and of f32 W), hi16's integer rounding, three products per step.
        if (t.precise) {
          src = swap(src, "subgroupMatrixLoad<Left, row_major>(&Al, off, stride)", "Left(off + stride + 1u)");
          assert.ok(src.includes("fn hi16(v: vec4<f32>) -> vec4<f32>"));
          // (unrolled: one line per result matrix and 16-deep step)
          const { RM, RN, BK, TK } = plan.defines, copies = t.unroll ? RM * RN * (BK / TK) : 1;
          assert.equal(
            src.match(/^\s+acc\[(i|\d+u)\]\[(j|\d+u)\] = mma\(/gm)?.length,
            (wF16 ? 2 : 3) * copies,
            `${v}: products per step`,
          );
        }
        if (t.precise && !wF16) {
          src = swap(
            src,
            "subgroupMatrixLoad<Right, col_major>(&Wl, off, stride)",
            "Right(off + stride + 1u)",
          );
        } else assert.ok(!src.includes("&Wl"), `${v}: W split only when f32 and precise`);
        src = swap(src, "subgroupMatrixMultiplyAccumulate(a, b, c)", "Result(c.x + f32(a.x + b.x))");
        src = swap(src, "subgroupMatrixStore<row_major>(&Cs, off, c, stride);", "Cs[off + stride] = c.x;");
        ctx.kernel({ name: `${v}_standins`, code: src, bindings: ["read", "read", "write"] });
      }
      // f16 results (ACC16): the fold through Cs16 and the f32 sums.
      if (v === "gemm_sgmat") {
        const plan = sgmatPlan(ctx, GEMM_VARIANTS[v], [cfg("f16", "f16", 16, 16, 16)], 32)!;
        let src = preprocess("gemm_sgmat.wgsl", { ...sgmatDefines(plan, true), B_C: 3 });
        src = swap(src, "enable chromium_experimental_subgroup_matrix;", "");
        src = swap(src, /alias Left = subgroup_matrix_left<[^>]*>;/, "struct Left { x: u32 }");
        src = swap(src, /alias Right = subgroup_matrix_right<[^>]*>;/, "struct Right { x: u32 }");
        src = swap(src, /alias Result = subgroup_matrix_result<f16, TN, TM>;/, "struct Result { x: f16 }");
        src = swap(src, /subgroupMatrixLoad<Left, row_major>\(&As, off, stride\)/, "Left(off + stride)");
        src = swap(src, /subgroupMatrixLoad<Right, col_major>\(&Ws, off, stride\)/, "Right(off + stride)");
        src = swap(src, "subgroupMatrixMultiplyAccumulate(a, b, c)", "Result(c.x + f16(a.x + b.x))");
        src = swap(
          src,
          "subgroupMatrixStore<row_major>(&Cs, off, c, stride);",
          "Cs[off + stride] = f32(c.x);",
        );
        src = swap(
          src,
          "subgroupMatrixStore<row_major>(&Cs16, off, c, stride);",
          "Cs16[off + stride] = c.x;",
        );
        ctx.kernel({ name: `${v}_acc16_standins`, code: src, bindings: ["read", "read", "write"] });
      }
    }
    await ctx.sync(); // throws the compiler's messages
  },
});

Deno.test("gemm_sgmat with the subgroup-matrix operations emulated (define EMU) matches the CPU twin: odd sizes, batch 2, bias, GELU, residual", async () => {
  // Everything but Dawn's four builtins: staging (A rounded to f16, W copied or rounded; split), offsets and strides
  // of the loads, register blocking, barriers, the result path through workgroup memory and store_c. Three
  // configurations (2x4 and 4x4 f32, 2x8 f16 result matrices per subgroup), both W types, one and two buffers;
  // ~1-2 s per pipeline on lavapipe (cold).
  const ctx = shared.withGpuSchedules();
  await checkAgainstTwin(ctx, "gemm_sgmat", "f16", cfg("f16", "f32", 16, 16, 16));
  // f16 results (ACC16): each 16-deep product rounded to f16, slices folded into f32; f32 W; 2x8 result matrices.
  await checkAgainstTwin(ctx, "gemm_sgmat", "f32", cfg("f16", "f16", 16, 8, 16));
  // Precise (A split into f16 hi + lo; f32 W split too) against the twin on the unrounded inputs, atol 1e-5: the
  // plain variant misses that by ~200x (max error 2.2e-3 on these inputs).
  await checkAgainstTwin(ctx, "gemm_sgmat_precise", "f16", cfg("f16", "f32", 16, 16, 16));
  // 64x64 blocks per subgroup (4x4 result matrices): precise with f32 W (A and W split; 2x8 of 16x8 matrices), and
  // double-buffered tiles (4.5 slices of 16: both buffers, an odd last one). Not the *_unroll variants: Mesa's
  // compile of the emulated multiply expanded 32 times took 25 s (wgpu) to 247 s (Dawn); checked once by hand
  // (gemm_sgmat_b64_db_bk16_v4_unroll, 16x16x8: max error 9.5e-7 on both, as without UNROLL); here their real WGSL
  // compiles with stand-ins (above).
  await checkAgainstTwin(ctx, "gemm_sgmat_b64_v4_precise", "f32", cfg("f16", "f32", 16, 8, 16));
  await checkAgainstTwin(ctx, "gemm_sgmat_b64_db_bk16_v4", "f32", cfg("f16", "f32", 16, 16, 16));
});

Deno.test({
  name:
    "gemm_sgmat* (tensor cores) match the CPU twin: odd sizes, batch 2, bias, GELU, residual, f16 and f32 W",
  ignore: realWhy !== null,
  async fn() {
    const ctx = shared.withGpuSchedules();
    for (const v of SGMAT) {
      for (const dtype of ["f16", "f32"] as const) {
        // e.g. the 128x256 precise variants with f32 W: above 48 KiB of workgroup memory, refused by name
        const why = gemmVariantUnsupported(ctx, v, false, dtype);
        if (why) {
          console.log(`skipped with ${dtype} W: ${why}`);
          continue;
        }
        console.log(
          `${v} ${dtype} W: ${sgmatPlan(ctx, GEMM_VARIANTS[v], undefined, undefined, dtype)!.describe}`,
        );
        await checkAgainstTwin(ctx, v, dtype);
      }
    }
    // The models' path: matmul() with COGVIEW2_GEMM=gemm_sgmat runs it (a long K: 2052, 64+ slices).
    const M = 67, N = 75, K = 2052;
    const a = randn(M * K, 91, 1), w = randn(N * K, 92, 0.05);
    const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16");
    const saved = Deno.env.get(GEMM_ENV);
    try {
      Deno.env.set(GEMM_ENV, "gemm_sgmat");
      const c = matmul(ctx, at, wt, { M, N, K, constantW: true });
      // f16 products exact in f32, summed in f32: within f32 rounding of the twin on f16-rounded inputs.
      assertClose(
        "COGVIEW2_GEMM=gemm_sgmat K=2052",
        await ctx.readF32(c),
        matmulRef(f16(a), f16(w), { M, N, K }),
        {
          atol: 1e-3,
          rtol: 1e-3,
        },
      );
      c.release();
      // At that K, each against the twin on the unrounded A (sums in f64): the f32 tiles, the plain tensor cores
      // (A rounded to f16) and the precise ones (A split). Logged for the record (the tensor cores' sums truncate,
      // as measured on earlier NVIDIA parts: at K=2052 that may weigh as much as A's rounding, which only a GPU can
      // tell); bounded at 3e-3 (results O(2); plain errs by ~1e-3 here).
      Deno.env.delete(GEMM_ENV);
      const exact = matmulRef(a, f16(w), { M, N, K });
      const errs: string[] = [];
      for (const tiling of ["gemm_tiles", TENSOR_CORE_GEMMS.fast[0], TENSOR_CORE_GEMM] as const) {
        const ct = gemmTiles(ctx, at, wt, { M, N, K, tiling });
        const got = await ctx.readF32(ct);
        ct.release();
        let max = 0;
        for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - exact[i]));
        errs.push(`${tiling} ${max.toExponential(2)}`);
        assertClose(`${tiling} K=2052 vs unrounded A`, got, exact, { atol: 3e-3, rtol: 0 });
      }
      console.log(`K=2052, max abs error vs the f64-summed twin on unrounded A: ${errs.join(", ")}`);
    } finally {
      if (saved === undefined) Deno.env.delete(GEMM_ENV);
      else Deno.env.set(GEMM_ENV, saved);
      [at, wt].forEach((t) => t.release());
    }
  },
});

Deno.test("COGVIEW2_TENSOR_CORES=1|fast: the SR-sized GEMMs take the precise (or plain) tensor-core GEMM where the device can run it with the weights' dtype, else the table's; Dawn gets the toggles", () => {
  assert.equal(tensorCoreMode(undefined), "off");
  assert.equal(tensorCoreMode("0"), "off");
  assert.equal(tensorCoreMode("1"), "precise");
  assert.equal(tensorCoreMode("fast"), "fast");
  assert.equal(tensorCoresRequested("fast"), true);
  assert.equal(tensorCoresRequested(""), false);
  assert.throws(() => tensorCoreMode("yes"), /COGVIEW2_TENSOR_CORES=yes: expected 1 .*, fast .* or 0/);
  // An H200 with the toggles (session 8's probe): f16->f32 16x16x16, fixed 32-wide subgroups.
  const h200 = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: true,
    hasF16: true,
    subgroupMinSize: 32,
    subgroupMaxSize: 32,
    subgroupMatrixConfigs: [cfg("f16", "f16", 16, 16, 16), cfg("f16", "f32", 16, 16, 16)],
    limits: {
      ...shared.gpu.limits,
      maxComputeWorkgroupStorageSize: 49152,
      maxComputeInvocationsPerWorkgroup: 1024,
    },
  });
  const none = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroupMatrix: false,
    subgroupMatrixConfigs: [],
  });
  // Only f16 results: the precise variants need an f32 one (the plain fold f16 sums into f32).
  const f16Only = new GpuContext({ ...h200.gpu, subgroupMatrixConfigs: [cfg("f16", "f16", 16, 16, 16)] });
  assert.equal(TENSOR_CORE_GEMM, "gemm_sgmat_128x256_v4_precise");
  assert.equal(gemmVariantUnsupported(h200, TENSOR_CORE_GEMM), null);
  // f32 W splits W too: one more tile, above 48 KiB at 128x256 (53248 bytes), so the 128x128 precise one.
  assert.match(
    gemmVariantUnsupported(h200, TENSOR_CORE_GEMM, false, "f32") ?? "",
    /53248 bytes .* with f32 W/,
  );
  assert.match(
    gemmVariantUnsupported(f16Only, "gemm_sgmat_v4_precise") ?? "",
    /needs an f16 subgroup matrix configuration \(f32 result\)/,
  );
  for (const [M, N] of [[28928, 2560], [6528, 10240], [32768, 7680]]) {
    const pick = (ctx: GpuContext, mode: "off" | "precise" | "fast", w: "f16" | "f32" = "f16") =>
      gpuGemmPick(ctx, M, N, mode, w);
    assert.deepEqual(pick(h200, "precise"), { variant: TENSOR_CORE_GEMM, forced: false }, `${M}x${N}`);
    assert.deepEqual(pick(h200, "precise", "f32"), { variant: "gemm_sgmat_v4_precise", forced: false });
    assert.deepEqual(pick(h200, "fast"), { variant: TENSOR_CORE_GEMMS.fast[0], forced: false });
    // Without the request, or on a device without tensor cores: the table's variant for the class.
    const table = { variant: gpuGemmVariant(h200, M, N), forced: false };
    assert.deepEqual(pick(h200, "off"), table);
    assert.deepEqual(pick(none, "precise"), { variant: gpuGemmVariant(none, M, N), forced: false });
    assert.deepEqual(pick(f16Only, "precise"), table);
  }
  // CogLM's prompt rows (smallM) keep the table's.
  assert.deepEqual(gpuGemmPick(h200, 10, 9216, "precise"), {
    variant: gpuGemmVariant(h200, 10, 9216),
    forced: false,
  });
  assert.deepEqual(dawnFlags("", true), [
    "enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis",
    "disable-dawn-features=timestamp_quantization",
  ]);
  assert.deepEqual(dawnFlags("disable_robustness,allow_unsafe_apis", true), [
    "enable-dawn-features=disable_robustness,allow_unsafe_apis,vulkan_enable_f16_on_nvidia",
    "disable-dawn-features=timestamp_quantization",
  ]);
  assert.deepEqual(dawnFlags("", false), ["disable-dawn-features=timestamp_quantization"]);
});
