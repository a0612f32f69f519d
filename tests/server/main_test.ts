// main.ts as users run it: --help, flag errors, `serve` (host default loopback, --port 0, --out, SIGTERM → exit 0) and
// `generate` (files under --out, style/n checks), on the scriptable pipeline; the no-WebGPU message. Not the model:
// tests/browser/demo_page_test.ts and tests/pipeline/text2image_test.ts run the demo model.

import nodeAssert from "node:assert/strict";
import { fakeImageBytes } from "./_fake_pipeline.ts";

const root = new URL("../../", import.meta.url).pathname;

async function run(args: string[], opts: { env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("main.ts: --help, unknown commands and bad flags exit 1 with a clear message", async () => {
  const help = await run(["main.ts", "--help"]);
  nodeAssert.equal(help.code, 0);
  nodeAssert.match(help.stdout, /deno task serve[\s\S]*--model DIR[\s\S]*--host ADDR .*127\.0\.0\.1/);
  const cases: Array<[string[], RegExp]> = [
    [["main.ts", "paint"], /Unknown command 'paint'/],
    [
      ["main.ts", "serve", "--port", "http"],
      /Flag --port must be an integer between 0 and 65535 \(got 'http'\)/,
    ],
    [["main.ts", "serve", "--port", "70000"], /Flag --port must be an integer/],
    [["main.ts", "--bogus"], /error: .*bogus/i],
    // Exposure: a non-loopback bind needs a token or an explicit opt-out (checked before the model loads).
    [
      ["main.ts", "serve", "--host", "0.0.0.0"],
      /--host 0\.0\.0\.0 exposes the server .*--token T or COGVIEW2_TOKEN=T.*--insecure-no-auth/,
    ],
    [["main.ts", "serve", "--host", "192.168.1.7", "--token", "short"], /token .* at least 16 characters/],
    [["main.ts", "generate"], /generate needs a prompt/],
    [["main.ts", "generate", "x", "--format", "gif"], /Flag --format must be png or jpeg/],
    [
      ["tests/server/_main_fake.ts", "generate", "a cat", "--style", "cubism"],
      /Flag --style must be one of .*photo/,
    ],
    [
      ["tests/server/_main_fake.ts", "generate", "a cat", "-n", "9"],
      /Flag --n must be an integer between 1 and 8/,
    ],
    // Memory settings, checked before the model loads.
    [
      ["main.ts", "serve", "--residency", "some"],
      /Flag --residency must be stage, all or auto \(got 'some'\)/,
    ],
    [
      ["main.ts", "generate", "x", "--gpu-memory", "lots"],
      /Flag --gpu-memory must be a GPU memory budget in GiB/,
    ],
    [["main.ts", "generate", "x", "--gpu-memory", "0"], /Flag --gpu-memory must be .* > 0/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    nodeAssert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    nodeAssert.match(r.stderr, re, args.join(" "));
    nodeAssert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace for a user error");
  }
  const env = await run(["main.ts", "generate", "x"], { env: { COGVIEW2_RESIDENCY: "half" } });
  nodeAssert.equal(env.code, 1);
  nodeAssert.match(env.stderr, /COGVIEW2_RESIDENCY must be stage, all or auto \(got 'half'\)/);
  const envG = await run(["main.ts", "generate", "x"], { env: { COGVIEW2_GPU_MEMORY: "16GB" } });
  nodeAssert.match(envG.stderr, /COGVIEW2_GPU_MEMORY must be a GPU memory budget in GiB/);
});

Deno.test("main.ts: without WebGPU the error says what to install", async () => {
  // Deno's WebGPU limited to a backend Linux lacks (DirectX 12) finds no adapter, as on a machine without Vulkan.
  // COGVIEW2_GPU=wgpu: this is wgpu's message (auto would go on to Dawn).
  const r = await run(["main.ts", "generate", "a cat"], {
    env: { DENO_WEBGPU_BACKEND: "dx12", COGVIEW2_GPU: "wgpu" },
  });
  nodeAssert.equal(r.code, 1);
  nodeAssert.match(r.stderr, /^error: No WebGPU adapter found\. .*apt-get install -y mesa-vulkan-drivers/m);
});

Deno.test("main.ts generate: writes n images under --out, one path per line on stdout", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await run([
      "tests/server/_main_fake.ts",
      "generate",
      "a red apple",
      "--style",
      "photo",
      "-n",
      "3",
      "--seed",
      "7",
      "--out",
      dir,
    ]);
    nodeAssert.equal(r.code, 0, r.stderr);
    const files = r.stdout.trim().split("\n");
    nodeAssert.deepEqual(files, [0, 1, 2].map((k) => `${dir}/cogview2-7-${k}.png`));
    for (const [k, f] of files.entries()) nodeAssert.deepEqual(await Deno.readFile(f), fakeImageBytes(7, k));
    nodeAssert.match(r.stderr, /generating 3 image\(s\), style photo, seed 7/);
    nodeAssert.match(r.stderr, /coglm done in [\d.]+ s/);
    nodeAssert.match(r.stderr, /3 image\(s\) in [\d.]+ s \(demo: noise\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "main.ts serve: loopback by default, --port 0, --out files, demo labelled, SIGTERM finishes the job, exit 0",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tests/server/_main_fake.ts", "serve", "--port", "0", "--out", out, "--grace", "5"],
      cwd: root,
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let log = "";
    const drain = (async () => {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
      }
    })();
    try {
      const t0 = Date.now();
      while (!/listening on (http:\S+)/.test(log)) {
        nodeAssert.ok(Date.now() - t0 < 30_000, `server starts: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const url = log.match(/listening on (http:\S+)/)![1];
      nodeAssert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, "loopback by default");
      nodeAssert.match(log, /DEMO, images are noise/);
      nodeAssert.match(log, new RegExp(`images are written under ${out}`));
      const model = await (await fetch(`${url}/v1/model`)).json();
      nodeAssert.equal(model.demo, true);
      const res = await fetch(`${url}/v1/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a cat", n: 2, seed: 11 }),
      });
      nodeAssert.equal(res.status, 202);
      const { id } = await res.json();
      // SIGTERM while the job runs: it gets the grace period, finishes, and the process exits 0.
      await new Promise((r) => setTimeout(r, 60));
      child.kill("SIGTERM");
      const status = await child.status;
      await drain;
      nodeAssert.equal(status.code, 0, log);
      nodeAssert.match(log, /SIGTERM: shutting down/);
      const files = [];
      for await (const e of Deno.readDir(out)) files.push(e.name);
      nodeAssert.equal(files.length, 2, `both images written: ${files}`);
      nodeAssert.ok(files.every((f) => f.includes(id)), `named by the job id: ${files}`);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("main.ts serve --host 0.0.0.0 with COGVIEW2_TOKEN: the API needs the token, /healthz does not", async () => {
  const token = "tok-" + crypto.randomUUID();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/server/_main_fake.ts", "serve", "--port", "0", "--host", "0.0.0.0"],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", COGVIEW2_TOKEN: token },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  try {
    while (!/listening on (http:\S+)/.test(log)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(log);
      log += value;
    }
    const port = log.match(/listening on http:\S+:(\d+)/)![1];
    const url = `http://127.0.0.1:${port}`;
    nodeAssert.match(log, /at \/\?token=TOKEN/);
    nodeAssert.equal((await fetch(`${url}/healthz`)).status, 200);
    nodeAssert.equal((await fetch(`${url}/v1/model`).then((r) => (r.body?.cancel(), r))).status, 401);
    const ok = await fetch(`${url}/v1/model`, { headers: { authorization: `Bearer ${token}` } });
    nodeAssert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    reader.cancel().catch(() => {});
  }
});
