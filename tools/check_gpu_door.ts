// One door to the GPU: only src/gpu talks to the WebGPU API. This check fails when any other TypeScript file of
// the project (src/, tools/, tests/, main.ts) touches the device, the queue, encoders, bind groups, buffers or
// navigator.gpu. Run by `deno task check`; `violations` is exported for its test (tests/tools/check_gpu_door_test.ts).

const RULES: { re: RegExp; why: string }[] = [
  { re: /\bnavigator\.gpu\b/, why: "navigator.gpu (adapters come from src/gpu/device.ts)" },
  { re: /\.device\b/, why: "a GPUDevice (use GpuContext)" },
  {
    re: /\bGPU(BufferUsage|ShaderStage|MapMode)\b/,
    why: "WebGPU usage/stage/map flags (GpuContext owns buffers)",
  },
  {
    re:
      /\b(createCommandEncoder|createBindGroup|createBindGroupLayout|createPipelineLayout|createComputePipeline|createShaderModule|createBuffer|createQuerySet|beginComputePass|dispatchWorkgroups|writeBuffer|onSubmittedWorkDone|mapAsync|getMappedRange)\b/,
    why: "a WebGPU call (GpuContext.kernel/dispatch/copy/write/read/fence)",
  },
];

/** The rule violations of one file's text: [line number, rule, line]. */
export function violations(text: string): { line: number; why: string; text: string }[] {
  const out: { line: number; why: string; text: string }[] = [];
  text.split("\n").forEach((raw, i) => {
    const code = raw.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
    for (const r of RULES) if (r.re.test(code)) out.push({ line: i + 1, why: r.why, text: raw.trim() });
  });
  return out;
}

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "testdata" && e.name !== "node_modules") yield* tsFiles(p);
    else if (e.isFile && e.name.endsWith(".ts")) yield p;
  }
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const found: string[] = [];
  const files = ["main.ts"];
  for (const d of ["src", "tools", "tests"]) {
    for await (const f of tsFiles(`${root}/${d}`)) files.push(f.slice(root.length + 1));
  }
  for (const f of files) {
    if (
      f.startsWith("src/gpu/") || f === "tools/check_gpu_door.ts" ||
      f === "tests/tools/check_gpu_door_test.ts"
    ) continue;
    for (const v of violations(await Deno.readTextFile(`${root}/${f}`))) {
      found.push(`${f}:${v.line}: ${v.why}: ${v.text}`);
    }
  }
  if (found.length) {
    console.error(
      `The GPU is reached only through src/gpu (GpuContext); ${found.length} place(s) outside it:`,
    );
    for (const l of found) console.error("  " + l);
    Deno.exit(1);
  }
  console.log(`gpu door: ${files.length} files, only src/gpu talks to WebGPU`);
}
