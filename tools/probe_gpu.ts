// `deno task gpu-info [--gpu dawn|wgpu|auto]`: the backend and adapter WebGPU gives this machine (first line
// `gpu: <backend> · <adapter> · <driver>`), its limits and features. Exits 1 when no backend can start (the reason
// on stderr). tools/run.sh uses it to decide whether Mesa's lavapipe must be installed.
import { takeGpuFlag } from "../src/gpu/backends.ts";
import { acquireGpu, closeGpu, describeGpu, gpuLine } from "../src/gpu/device.ts";

try {
  const rest = takeGpuFlag(Deno.args);
  if (rest.length) throw new Error(`gpu-info takes only --gpu (got ${rest.join(" ")})`);
  const gpu = await acquireGpu();
  console.log(gpuLine(gpu));
  console.log(describeGpu(gpu));
  console.log(
    `subgroups ${
      gpu.hasSubgroups ? `yes${gpu.subgroupSize ? ` (size ${gpu.subgroupSize})` : ""}` : "no"
    }; timestamps ${gpu.hasTimestamps ? "yes" : "no"}; ` +
      `uniform buffers per stage ${gpu.limits.maxUniformBuffersPerShaderStage}`,
  );
  closeGpu(gpu);
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(1);
}
