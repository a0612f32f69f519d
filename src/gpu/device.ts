// Adapter and device acquisition: the one place that knows where a GPUDevice comes from.
// Not a scheduler or allocator: see context.ts for pooling, pipelines and command recording.

import { backend, type BackendName, BACKENDS, type GpuChoice, gpuChoice } from "./backends.ts";
import { autoPick, entryKey, forgetDecision, type Measure } from "./tuning.ts";

/**
 * One subgroup-matrix shape (Dawn's GPUSubgroupMatrixConfig): left M×K and right K×N matrices of `componentType`,
 * the M×N result of `resultComponentType` ("f32", "f16", "u32", "i32", "u8", "i8").
 */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** "f16->f32 16x16x16" (component->result MxNxK). */
export function formatSubgroupMatrixConfig(c: SubgroupMatrixConfig): string {
  return `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`;
}

/**
 * Dawn's adapter info subgroupMatrixConfigs as typed data: entries whose types are strings and whose M, N, K are
 * positive integers; anything else (absent, not iterable, throwing getters) gives [] or is left out.
 */
export function parseSubgroupMatrixConfigs(raw: unknown): SubgroupMatrixConfig[] {
  const out: SubgroupMatrixConfig[] = [];
  try {
    if (!raw || typeof (raw as Iterable<unknown>)[Symbol.iterator] !== "function") return [];
    for (const c of raw as Iterable<Record<string, unknown>>) {
      const cfg = {
        componentType: String(c?.componentType ?? ""),
        resultComponentType: String(c?.resultComponentType ?? ""),
        M: Number(c?.M),
        N: Number(c?.N),
        K: Number(c?.K),
      };
      const dims = [cfg.M, cfg.N, cfg.K].every((x) => Number.isInteger(x) && x > 0);
      if (cfg.componentType && cfg.resultComponentType && dims) out.push(cfg);
    }
  } catch {
    return out;
  }
  return out;
}

/** The WebGPU feature name of subgroup matrices in Dawn (experimental; needs the allow_unsafe_apis toggle). */
export const SUBGROUP_MATRIX_FEATURE = "chromium-experimental-subgroup-matrix";

/** What the rest of the code needs to know about the adapter it runs on. */
export interface Gpu {
  device: GPUDevice;
  /** The WebGPU implementation (src/gpu/backends.ts). */
  backend: BackendName;
  /** The driver behind the adapter (e.g. "Mesa 22.3.6"), or "driver unknown". */
  driver: string;
  /** `subgroups` is available and enabled on the device. */
  hasSubgroups: boolean;
  /**
   * The subgroup size when `subgroups` is enabled and the adapter's is fixed (subgroupMinSize = subgroupMaxSize,
   * e.g. 8 on lavapipe): kernels may then make a workgroup exactly one subgroup. Null otherwise.
   */
  subgroupSize: number | null;
  /**
   * The smallest subgroup size the adapter reports (adapter info subgroupMinSize) when `subgroups` is enabled, fixed
   * or not (e.g. 8 on lavapipe, 32 on an H200 through Dawn); null without subgroups or where it is not reported.
   * Kernels whose subgroup operations stay within aligned groups of G invocations run wherever this is >= G.
   */
  subgroupMinSize: number | null;
  /** Set when `auto` chose the backend: "auto → dawn (measured: dawn 80 ms vs wgpu 210 ms)" (src/gpu/tuning.ts). */
  auto?: string;
  /** Adapter description (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  name: string;
  /** True for software adapters such as Mesa's lavapipe. */
  isFallback: boolean;
  /** `shader-f16` is available (never required: f16 weights are stored packed in u32). */
  hasF16: boolean;
  /** `timestamp-query` is available for per-kernel timing. */
  hasTimestamps: boolean;
  /**
   * The subgroup sizes the adapter reports (adapter info subgroupMaxSize, e.g. 32 on an H200 through Dawn) when
   * `subgroups` is enabled; null otherwise. Shaders that use subgroup matrices need a workgroup x size that is a
   * multiple of it (Dawn's rule).
   */
  subgroupMaxSize: number | null;
  /**
   * `chromium-experimental-subgroup-matrix` (tensor-core tiles from WGSL; Dawn lists it with the allow_unsafe_apis
   * toggle, on Vulkan only where VK_KHR_cooperative_matrix is usable) is enabled on the device.
   */
  hasSubgroupMatrix: boolean;
  /**
   * The adapter's subgroup matrix shapes (Dawn's adapter info subgroupMatrixConfigs, listed where the adapter offers
   * chromium-experimental-subgroup-matrix; f16 ones only where shader-f16 is usable, i.e. on NVIDIA with the
   * vulkan_enable_f16_on_nvidia toggle); empty elsewhere (wgpu, lavapipe). formatSubgroupMatrixConfig prints one.
   */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  /** Why the subgroup-matrix feature is listed but not enabled (the device request failed with it), else absent. */
  subgroupMatrixNote?: string;
  /** Every feature the adapter offers, sorted (gpu-info prints them; e.g. whether a subgroup-matrix feature exists). */
  adapterFeatures: string[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
    minStorageBufferOffsetAlignment: number;
    minUniformBufferOffsetAlignment: number;
    maxUniformBufferBindingSize: number;
    maxUniformBuffersPerShaderStage: number;
    maxStorageBuffersPerShaderStage: number;
    maxDynamicUniformBuffersPerPipelineLayout: number;
  };
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Ask for timestamp queries when the adapter has them (benchmarks). */
  timestamps?: boolean;
  /** dawn, wgpu or auto (default: the process's choice, --gpu or COGVIEW2_GPU, else auto). */
  backend?: GpuChoice;
  /** auto: a fixed order to try instead of the measured choice (tests). */
  autoOrder?: readonly BackendName[];
  /** auto: how a backend is measured (default: tools/probe_gpu.ts --measure in a child process; tests inject). */
  measure?: Measure;
  /** auto: the tuning cache file (default tuningFile()). */
  tuningPath?: string;
  /** Where auto reports a backend that could not start (default stderr). */
  log?: (line: string) => void;
}

/**
 * Acquires an adapter and a device with the adapter's own maximum limits from the chosen backend. `auto` tries each
 * backend in turn and says in one line why one could not start; a named backend that cannot start throws that line.
 */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const choice = options.backend ?? gpuChoice();
  if (choice !== "auto") return await acquireFrom(choice, options);
  if (options.autoOrder) return await acquireInOrder(options.autoOrder, options);
  // By measurement: the cached (or newly measured) faster backend first, then the others.
  const log = options.log ?? console.error;
  let pick = await autoPick({ measure: options.measure, path: options.tuningPath, log });
  for (let attempt = 0;; attempt++) {
    const order = [pick.choice, ...BACKENDS.filter((b) => b !== pick.choice)];
    const gpu = await acquireInOrder(order, options);
    if (gpu.backend !== pick.choice) {
      gpu.auto = `auto → ${gpu.backend} (${pick.choice}, measured faster, could not start)`;
      return gpu;
    }
    const now = entryKey({ backend: gpu.backend, adapter: gpu.name, driver: gpu.driver });
    if (attempt === 0 && pick.entry && entryKey(pick.entry) !== now) {
      // The adapter or driver changed since the measurement: measure again.
      log(`gpu: ${now} is not what auto measured (${entryKey(pick.entry)}): measuring again`);
      closeGpu(gpu);
      forgetDecision(options.tuningPath);
      pick = await autoPick({ measure: options.measure, path: options.tuningPath, log, retune: true });
      continue;
    }
    gpu.auto = `auto → ${gpu.backend} (${pick.note})`;
    return gpu;
  }
}

async function acquireInOrder(order: readonly BackendName[], options: AcquireOptions): Promise<Gpu> {
  const reasons: string[] = [];
  for (const name of order) {
    try {
      return await acquireFrom(name, options);
    } catch (e) {
      const line = `gpu: ${name} cannot start: ${(e as Error).message}`;
      reasons.push(line);
      (options.log ?? console.error)(line + (name !== order.at(-1) ? "; trying the next backend" : ""));
    }
  }
  throw new Error(`No WebGPU backend could start:\n${reasons.join("\n")}`);
}

async function acquireFrom(name: BackendName, options: AcquireOptions): Promise<Gpu> {
  const b = backend(name);
  const adapter = await b.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
  const features: GPUFeatureName[] = [];
  const hasF16 = adapter.features.has("shader-f16");
  if (hasF16) features.push("shader-f16");
  const hasTimestamps = adapter.features.has("timestamp-query");
  if (hasTimestamps && options.timestamps) features.push("timestamp-query");
  const hasSubgroups = adapter.features.has("subgroups" as GPUFeatureName);
  if (hasSubgroups) features.push("subgroups" as GPUFeatureName);
  // Subgroup matrices need `subgroups` (Dawn: "Requires subgroups (for maxSubgroupSize)").
  let hasSubgroupMatrix = hasSubgroups && adapter.features.has(SUBGROUP_MATRIX_FEATURE as GPUFeatureName);
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxDynamicUniformBuffersPerPipelineLayout: a.maxDynamicUniformBuffersPerPipelineLayout,
    maxUniformBuffersPerShaderStage: a.maxUniformBuffersPerShaderStage,
  };
  // An experimental feature must never cost the device: if the request fails with it, ask again without it and keep
  // the reason (gpu-info prints it).
  let device: GPUDevice, subgroupMatrixNote: string | undefined;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: hasSubgroupMatrix
        ? [...features, SUBGROUP_MATRIX_FEATURE as GPUFeatureName]
        : features,
      requiredLimits,
    });
  } catch (e) {
    if (!hasSubgroupMatrix) throw e;
    hasSubgroupMatrix = false;
    subgroupMatrixNote = `the device request with ${SUBGROUP_MATRIX_FEATURE} failed: ${(e as Error).message}`;
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  }
  const info = adapter.info;
  const sgInfo = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const subgroupSize =
    hasSubgroups && sgInfo.subgroupMinSize && sgInfo.subgroupMinSize === sgInfo.subgroupMaxSize
      ? sgInfo.subgroupMinSize
      : null;
  const subgroupMinSize = hasSubgroups && sgInfo.subgroupMinSize ? sgInfo.subgroupMinSize : null;
  const subgroupMaxSize = hasSubgroups && sgInfo.subgroupMaxSize ? sgInfo.subgroupMaxSize : null;
  let rawConfigs: unknown;
  try {
    rawConfigs = (info as unknown as { subgroupMatrixConfigs?: unknown }).subgroupMatrixConfigs;
  } catch {
    rawConfigs = undefined; // a getter that throws: no configurations
  }
  const subgroupMatrixConfigs = parseSubgroupMatrixConfigs(rawConfigs);
  const adapterName = b.adapterName(adapter);
  const l = device.limits;
  const cap = bindingCap();
  return {
    device,
    backend: name,
    driver: await b.driver(adapter),
    hasSubgroups,
    subgroupSize,
    subgroupMinSize,
    subgroupMaxSize,
    hasSubgroupMatrix,
    subgroupMatrixConfigs,
    ...(subgroupMatrixNote ? { subgroupMatrixNote } : {}),
    name: adapterName,
    isFallback: Boolean((info as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter),
    hasF16,
    hasTimestamps: hasTimestamps && Boolean(options.timestamps),
    adapterFeatures: [...adapter.features].map(String).sort(),
    limits: {
      maxStorageBufferBindingSize: cap
        ? Math.min(cap, l.maxStorageBufferBindingSize)
        : l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
      maxUniformBufferBindingSize: l.maxUniformBufferBindingSize,
      maxUniformBuffersPerShaderStage: l.maxUniformBuffersPerShaderStage,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxDynamicUniformBuffersPerPipelineLayout: l.maxDynamicUniformBuffersPerPipelineLayout,
    },
  };
}

/** Environment variable that lowers the reported max storage binding (tests of the splitting paths). */
export const MAX_BINDING_ENV = "COGVIEW2_MAX_BINDING_BYTES";

/**
 * `COGVIEW2_MAX_BINDING_BYTES=N` (a multiple of 256, at least 64 KiB) makes the code behave as on an adapter whose
 * max storage binding is N: every tensor above it must be split, exactly as the published widths need on a
 * 128 MiB adapter. Unset (or not readable): the adapter's own limit.
 */
function bindingCap(): number | null {
  let v: string | undefined;
  try {
    v = Deno.env.get(MAX_BINDING_ENV);
  } catch {
    return null; // no --allow-env: the adapter's limit
  }
  if (v === undefined || v === "") return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 65536 || n % 256) {
    throw new Error(
      `${MAX_BINDING_ENV}=${v}: must be an integer number of bytes, a multiple of 256, at least 65536`,
    );
  }
  return n;
}

/** The line every command prints first: `gpu: <backend> · <adapter> · <driver>`. */
export function gpuLine(gpu: Gpu): string {
  return `gpu: ${gpu.auto ?? gpu.backend} · ${gpu.name} · ${gpu.driver}`;
}

/** One line naming the adapter and its limits, for logs and `/v1/model`. */
export function describeGpu(gpu: Gpu): string {
  const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  return `${gpu.name}${gpu.isFallback ? " (fallback/software)" : ""}; shader-f16 ${
    gpu.hasF16 ? "yes" : "no"
  }; ` +
    `max storage binding ${mib(gpu.limits.maxStorageBufferBindingSize)}, max buffer ${
      mib(gpu.limits.maxBufferSize)
    }`;
}

/** Destroys the device (tools that probe and exit). */
export function closeGpu(gpu: Gpu): void {
  gpu.device.destroy();
}
