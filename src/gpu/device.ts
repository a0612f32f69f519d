// Adapter and device acquisition: the one place that knows where a GPUDevice comes from.
// Not a scheduler or allocator: see context.ts for pooling, pipelines and command recording.

/** What the rest of the code needs to know about the adapter it runs on. */
export interface Gpu {
  device: GPUDevice;
  /** Adapter description (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  name: string;
  /** True for software adapters such as Mesa's lavapipe. */
  isFallback: boolean;
  /** `shader-f16` is available (never required: f16 weights are stored packed in u32). */
  hasF16: boolean;
  /** `timestamp-query` is available for per-kernel timing. */
  hasTimestamps: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    minStorageBufferOffsetAlignment: number;
    minUniformBufferOffsetAlignment: number;
    maxUniformBufferBindingSize: number;
    maxUniformBuffersPerShaderStage: number;
    maxDynamicUniformBuffersPerPipelineLayout: number;
  };
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Ask for timestamp queries when the adapter has them (benchmarks). */
  timestamps?: boolean;
}

const INSTALL_HINT = "No WebGPU adapter found. Install a Vulkan driver: on Debian/Ubuntu " +
  "`apt-get install -y mesa-vulkan-drivers` gives Mesa's lavapipe, which runs WebGPU on the CPU. " +
  "`bash tools/run.sh` installs it for you when run as root.";

/**
 * Acquires an adapter and a device with the adapter's own maximum limits.
 * The single entry point for a backend: a Dawn-based `navigator.gpu` (npm `webgpu`) can be swapped in here.
 */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new Error(
      "WebGPU is not available in this runtime: run Deno with --unstable-webgpu. " + INSTALL_HINT,
    );
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) throw new Error(INSTALL_HINT);
  const features: GPUFeatureName[] = [];
  const hasF16 = adapter.features.has("shader-f16");
  if (hasF16) features.push("shader-f16");
  const hasTimestamps = adapter.features.has("timestamp-query");
  if (hasTimestamps && options.timestamps) features.push("timestamp-query");
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
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  const info = adapter.info;
  const name = info?.description ||
    [info?.vendor, info?.architecture, info?.device].filter(Boolean).join(" ") ||
    "unknown adapter";
  const l = device.limits;
  const cap = bindingCap();
  return {
    device,
    name,
    isFallback: Boolean((info as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter),
    hasF16,
    hasTimestamps: hasTimestamps && Boolean(options.timestamps),
    limits: {
      maxStorageBufferBindingSize: cap
        ? Math.min(cap, l.maxStorageBufferBindingSize)
        : l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
      maxUniformBufferBindingSize: l.maxUniformBufferBindingSize,
      maxUniformBuffersPerShaderStage: l.maxUniformBuffersPerShaderStage,
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
