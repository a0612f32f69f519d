// Stage residency on the real pipeline (demo model, GPU): by stage only the running stage's model is in the pool
// (its weights alone after each transition), the images (text-to-image and completion) equal the all-resident ones
// bit for bit, the pool returns to its baseline after a job in both modes, also after a job cancelled mid-pipeline
// (no leak), and a job whose estimated peak exceeds the budget gets 503 before it runs. Each pipeline has its own
// GpuContext (own pool counters) on the shared device. Three whole jobs and two completions run: about 4 min on an
// idle 2-core lavapipe (12 min with six agents on the box).
import nodeAssert from "node:assert/strict";
import { ensureDemoModel } from "../../src/demo/model.ts";
import { encodePng } from "../../src/formats/image.ts";
import { GpuContext, sharedContext } from "../../src/gpu/context.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import { type GenerateRequest, PipelineError } from "../../src/pipeline/types.ts";
import {
  estimatePeak,
  excessAt,
  type ModelSlot,
  type ResidencySetting,
  stageBatches,
} from "../../src/pipeline/residency.ts";
import { createApp, startServer } from "../../src/server/app.ts";

const root = new URL("../../", import.meta.url).pathname;
const opts = { sanitizeResources: false, sanitizeOps: false };
const never = new AbortController().signal;

async function open(residency: ResidencySetting, gpuMemoryBytes: number | null = null) {
  const gpu = (await sharedContext()).gpu;
  const ctx = new GpuContext(gpu);
  const modelDir = await ensureDemoModel({ dir: `${root}.cache/demo` });
  const p = await Text2ImagePipeline.open({
    ctx,
    modelDir,
    demo: true,
    maxInferenceBatch: 2,
    residency,
    gpuMemoryBytes,
  });
  return { p, ctx };
}

function req(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: "a red bird",
    style: "mainbody",
    n: 1,
    seed: 11,
    onlyFirstStage: false,
    inversePrompt: true,
    format: "png",
    ...over,
  };
}

/** The model a pipeline stage name runs on. */
const modelOf: Record<string, ModelSlot> = {
  coglm: "coglm",
  postselect: "coglm",
  preview: "vqvae",
  dsr: "dsr",
  itersr: "itersr",
  decode: "vqvae",
};

Deno.test({
  ...opts,
  name:
    "residency: stage keeps one model at a time and gives the all-resident image bit for bit; no pool leak",
  async fn() {
    // ---- by stage
    const s = await open("stage");
    const st = s.p.residency!;
    nodeAssert.equal(st.choice.mode, "stage");
    nodeAssert.deepEqual(st.models.loaded(), ["coglm"], "an idle server by stage holds CogLM only");
    const baseline = s.ctx.poolBytes;
    nodeAssert.equal(baseline, st.models.slots.coglm.loadedBytes, "the baseline is CogLM's weights");
    const seen = new Map<string, string>(); // stage → models loaded during its steps
    const stageImages = await s.p.generate(req(), (e) => {
      if (e.type === "step") seen.set(e.stage, st.models.loaded().join());
    }, never);
    for (const [stage, loaded] of seen) nodeAssert.equal(loaded, modelOf[stage], `during ${stage}`);
    nodeAssert.deepEqual([...seen.keys()], ["coglm", "postselect", "preview", "dsr", "itersr", "decode"]);
    // After each transition the pool holds exactly the entered model's weights: the previous stage's are gone.
    const enters = st.models.transitions.map((t) => t.enter);
    nodeAssert.deepEqual(enters, ["coglm", "coglm", "vqvae", "dsr", "itersr", "vqvae", "coglm"]);
    for (const t of st.models.transitions) {
      const bytes = st.models.slots[t.enter].loadedBytes;
      nodeAssert.deepEqual(t.loaded, [t.enter]);
      nodeAssert.equal(t.poolBytes, bytes, `pool at ${t.enter}'s start = its weights (${bytes} B)`);
    }
    nodeAssert.equal(s.ctx.poolBytes, baseline, "by stage: back to the baseline after the job");

    // ---- all resident
    const a = await open("all");
    nodeAssert.deepEqual(a.p.residency!.models.loaded(), ["coglm", "dsr", "itersr", "vqvae"]);
    const allImages = await a.p.generate(req(), () => {}, never);
    nodeAssert.equal(allImages.length, stageImages.length);
    for (const [k, img] of allImages.entries()) {
      nodeAssert.deepEqual(stageImages[k].data, img.data, `image ${k}: stage = all, bit for bit`);
      nodeAssert.equal(stageImages[k].score, img.score);
    }
    // The first job makes the lazily built copies (cluster tables; on CPU adapters the packed weights); later jobs
    // must return to that pool size exactly.
    const warm = a.ctx.poolBytes;
    await a.p.generate(req({ seed: 12 }), () => {}, never);
    nodeAssert.equal(a.ctx.poolBytes, warm, "all resident: the pool returns to its size after the job");
    nodeAssert.deepEqual(a.p.residency!.models.loaded(), ["coglm", "dsr", "itersr", "vqvae"]);
    // The measured figures replace the formula; the formula was not below them at this batch.
    for (const m of ["coglm", "dsr", "itersr", "vqvae"] as const) {
      nodeAssert.equal(a.p.residency!.footprints[m].source, "measured", m);
    }
  },
});

// Calibrated at the adapter's own binding limit: under an artificially lowered one (COGVIEW2_MAX_BINDING_BYTES, CI's
// 1 MiB run) the split paths' band/row-block temporaries are not in the formula (1 MiB: DSR measured 19.6 MB vs a
// 17.9 MB formula), so this one test is skipped there; the measured figures replace the formula after a first job.
Deno.test({
  ...opts,
  ignore: Deno.env.get("COGVIEW2_MAX_BINDING_BYTES") !== undefined,
  name: "residency: the formula estimate is not below the measured stage excess (demo model, by stage)",
  async fn() {
    const s = await open("stage");
    const fp = s.p.residency!.footprints;
    const formula = Object.fromEntries(
      (["coglm", "dsr", "itersr", "vqvae"] as const).map((m) => [m, excessAt(fp[m], 1)]),
    );
    await s.p.generate(req({ inversePrompt: false }), () => {}, never);
    for (const m of ["coglm", "dsr", "itersr", "vqvae"] as const) {
      const measured = excessAt(fp[m], 1);
      console.log(`${m}: formula ${formula[m]} B, measured ${measured} B`);
      nodeAssert.ok(formula[m] >= measured, `${m}: formula ${formula[m]} >= measured ${measured}`);
    }
  },
});

Deno.test({
  ...opts,
  name:
    "residency: a job over the GPU memory budget gets 503 before it runs (pipeline and HTTP); auto by budget",
  async fn() {
    const free = await open("stage");
    // The estimates of a 1- and a 2-image job by stage (the /v1/model report is at the configured batch, 2).
    const e = free.p.memory()!.estimate!;
    nodeAssert.equal(e.batch, 2);
    const two = e.peak_bytes;
    const one = estimatePeak(free.p.residency!.footprints, "stage", stageBatches(1, 2, 4)).peak;
    nodeAssert.ok(one <= two);
    // A budget just below the 2-image estimate: one image fits and two do not when a batch-dependent stage is the
    // peak; when the VQ-VAE (one image at a time) is, no job fits (e.g. at a 30 MiB binding the SR logits blocks
    // are smaller than the VQ-VAE's maps).
    const tight = await open("stage", two - 1);
    nodeAssert.throws(
      () => tight.p.validate(req({ n: 2 })),
      (err: Error) =>
        err instanceof PipelineError && err.status === 503 && /Not enough GPU memory/.test(err.message) &&
        (one < two ? /at most 1 image/ : /No job fits this budget/).test(err.message),
    );
    if (one < two) tight.p.validate(req({ n: 1 })); // fits: no throw
    // HTTP: 503 with the message, no job queued.
    const app = createApp({ pipeline: tight.p, maxQueue: 4 });
    const server = await startServer(app, { port: 0, host: "127.0.0.1" });
    try {
      const res = await fetch(server.url + "/v1/images", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a red bird", n: 2 }),
      });
      const body = await res.json();
      nodeAssert.equal(res.status, 503, JSON.stringify(body));
      nodeAssert.match(body.error, /Not enough GPU memory/);
      const jobs = await (await fetch(server.url + "/v1/jobs")).json();
      nodeAssert.equal(jobs.jobs.length, 0, "no job was queued");
      const model = await (await fetch(server.url + "/v1/model")).json();
      nodeAssert.equal(model.details.residency.mode, "stage");
      nodeAssert.equal(model.memory.gpu_memory_bytes, two - 1);
    } finally {
      await server.shutdown(100);
    }
    // A budget below one image names no smaller job.
    const none = await open("stage", 1024);
    nodeAssert.throws(() => none.p.validate(req({ n: 1 })), /No job fits this budget/);
    // auto: "all" without a budget or when it fits, "stage" when only that fits.
    nodeAssert.equal((await open("auto")).p.residency!.choice.mode, "all");
    nodeAssert.equal((await open("auto", 2 ** 50)).p.residency!.choice.mode, "all");
    const auto = await open("auto", two);
    nodeAssert.equal(auto.p.residency!.choice.mode, "stage");
    nodeAssert.match(auto.p.residency!.choice.reason, /auto: every model resident does not fit/);
  },
});

Deno.test({
  ...opts,
  name:
    "residency: by stage, completion gives the all-resident image and a job cancelled in DSR leaves the baseline",
  async fn() {
    const W = 64, H = 64;
    const rgba = new Uint8Array(W * H * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
    const creq = {
      prompt: "a cat",
      style: "none",
      n: 1,
      seed: 3,
      image: encodePng(rgba, W, H),
      box: [0.3, 0.3, 0.5, 0.5] as [number, number, number, number],
      format: "png" as const,
    };
    const s = await open("stage");
    const baseline = s.ctx.poolBytes;
    const [byStage] = await s.p.complete(creq, () => {}, never);
    nodeAssert.equal(s.ctx.poolBytes, baseline, "completion: back to the baseline");
    const a = await open("all");
    const [all] = await a.p.complete(creq, () => {}, never);
    nodeAssert.deepEqual(byStage.data, all.data, "completion: stage = all, bit for bit");

    // Cancelled as DSR starts: the job fails, CogLM is loaded again and the pool is at its baseline.
    const ac = new AbortController();
    await nodeAssert.rejects(
      s.p.generate(req({ inversePrompt: false }), (e) => {
        if (e.type === "stage" && e.stage === "dsr") ac.abort();
      }, ac.signal),
      (e: Error) => e.name === "AbortError",
    );
    nodeAssert.deepEqual(s.p.residency!.models.loaded(), ["coglm"]);
    nodeAssert.equal(s.ctx.poolBytes, baseline, "cancelled: back to the baseline");
  },
});
