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

/** `COGVIEW2_TENSOR_CORES=1`: tensor-core GEMMs where the adapter can run them (src/kernels/gemm.ts gpuGemmPick). */
export const TENSOR_CORES_ENV = "COGVIEW2_TENSOR_CORES";

/**
 * Dawn's adapter toggles that expose tensor cores: `allow_unsafe_apis` lists chromium-experimental-subgroup-matrix,
 * `vulkan_enable_f16_on_nvidia` lifts Dawn's shader-f16 blocklist on NVIDIA's Vulkan drivers (crbug.com/42251215),
 * without which an H200 lists only the integer subgroup-matrix configurations.
 */
export const TENSOR_CORE_TOGGLES = ["vulkan_enable_f16_on_nvidia", "allow_unsafe_apis"];

/** Whether COGVIEW2_TENSOR_CORES asks for tensor cores ("1"; unset, "" or "0": no); another value is an error. */
export function tensorCoresRequested(env = readEnv(TENSOR_CORES_ENV)): boolean {
  if (env === undefined || env === "" || env === "0") return false;
  if (env === "1") return true;
  throw new Error(`${TENSOR_CORES_ENV}=${env}: expected 1 (tensor cores where the adapter has them) or 0`);
}
