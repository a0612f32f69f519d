// Environment variables read by the GPU layer and the kernels (COGVIEW2_GPU, COGVIEW2_GEMM, ...): one reader that
// treats a process without --allow-env like an unset variable.

/** The variable's value, or undefined when it is unset or the process may not read the environment. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * `COGVIEW2_TENSOR_CORES`: tensor-core GEMMs where the adapter can run them (src/kernels/matmul.ts gpuGemmPick):
 * "1" the precise variants (A split into f16 hi + lo: the golden tolerances hold), "fast" the plain ones (A rounded
 * to f16: faster, misses them by a hair); unset, "" or "0": off.
 */
export const TENSOR_CORES_ENV = "COGVIEW2_TENSOR_CORES";

/** Which tensor-core GEMMs COGVIEW2_TENSOR_CORES asks for. */
export type TensorCoreMode = "off" | "precise" | "fast";

/**
 * Dawn's adapter toggles that expose tensor cores: `allow_unsafe_apis` lists chromium-experimental-subgroup-matrix,
 * `vulkan_enable_f16_on_nvidia` lifts Dawn's shader-f16 blocklist on NVIDIA's Vulkan drivers (crbug.com/42251215),
 * without which an H200 lists only the integer subgroup-matrix configurations.
 */
export const TENSOR_CORE_TOGGLES = ["vulkan_enable_f16_on_nvidia", "allow_unsafe_apis"];

/** COGVIEW2_TENSOR_CORES read: "1" precise, "fast", unset/""/"0" off; another value is an error naming it. */
export function tensorCoreMode(env = readEnv(TENSOR_CORES_ENV)): TensorCoreMode {
  if (env === undefined || env === "" || env === "0") return "off";
  if (env === "1") return "precise";
  if (env === "fast") return "fast";
  throw new Error(
    `${TENSOR_CORES_ENV}=${env}: expected 1 (precise tensor cores where the adapter has them), ` +
      "fast (A rounded to f16: faster, outside the golden tolerances) or 0",
  );
}

/** Whether COGVIEW2_TENSOR_CORES asks for tensor cores at all (Dawn then gets TENSOR_CORE_TOGGLES). */
export function tensorCoresRequested(env = readEnv(TENSOR_CORES_ENV)): boolean {
  return tensorCoreMode(env) !== "off";
}
