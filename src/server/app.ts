// The HTTP API (Deno.serve handler): validation, jobs, server-sent events, images, metrics, the page, shutdown.
// Not model code: everything image-related goes through the Pipeline interface and the JobQueue.

import {
  type CompletionRequest,
  type GenerateRequest,
  type ImageFormat,
  type Pipeline,
  PipelineError,
} from "../pipeline/types.ts";
import { readImageHeader } from "../formats/image.ts";
import { allowedHosts, hostName, requestToken, TOKEN_COOKIE, tokenMatches } from "./access.ts";
import { isTerminal, type Job, type JobEvent, JobQueue, QueueFullError, ShuttingDownError } from "./jobs.ts";
import { Metrics } from "./metrics.ts";
import { renderPage } from "./page.ts";

export interface AppOptions {
  pipeline: Pipeline;
  /** Jobs allowed to wait behind the running one (default 16). */
  maxQueue?: number;
  /** Finished jobs kept (default 64). */
  maxFinished?: number;
  /** Finished jobs expire after this (default 1 h). */
  ttlMs?: number;
  /** Write result images under this directory instead of memory. */
  outDir?: string;
  /** Largest accepted JSON body for /v1/images (default 16 KiB). */
  maxBodyBytes?: number;
  /** Largest accepted JSON body for /v1/completions, which carries an image (default 12 MiB). */
  maxCompletionBodyBytes?: number;
  /** Longest prompt in characters before tokenization (default 1000; the token bound is the pipeline's). */
  maxPromptChars?: number;
  /** Shared secret required on every route but /healthz (Authorization: Bearer, or the page's cookie). */
  token?: string;
  /** Host names (no port) requests may name; others get 421 (default: localhost and its loopback addresses). */
  hosts?: ReadonlySet<string>;
  /** Interval of SSE keep-alive comments (default 15 s). */
  keepAliveMs?: number;
  log?: (msg: string) => void;
}

export interface App {
  handler: (req: Request) => Promise<Response>;
  queue: JobQueue;
  metrics: Metrics;
  /** Stops accepting jobs, lets the running job finish for `graceMs` then cancels it, closes event streams. */
  close(graceMs?: number): Promise<void>;
}

const GENERATE_FIELDS = [
  "prompt",
  "style",
  "n",
  "seed",
  "only_first_stage",
  "inverse_prompt",
  "format",
  "wait",
];
const COMPLETION_FIELDS = ["prompt", "style", "n", "seed", "image", "box", "format", "wait"];
const MAX_SEED = 0xffffffff;

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

function errorResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return json({ error: message, status }, status, headers);
}

/** Reads at most `limit` bytes of the body; throws 413 beyond it (checked on Content-Length first). */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, `Request body too large: ${declared} bytes, the limit is ${limit} bytes`);
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new HttpError(
        413,
        `Request body too large: more than ${limit} bytes, the limit is ${limit} bytes`,
      );
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) out.set(c, (o += c.byteLength) - c.byteLength);
  return out;
}

async function readJson(req: Request, limit: number): Promise<Record<string, unknown>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpError(415, `Content-Type must be application/json (got ${type ? `'${type}'` : "none"})`);
  }
  const bytes = await readBody(req, limit);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new HttpError(400, `Request body is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "Request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

function checkFields(body: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw new HttpError(400, `Unknown field '${k}'; allowed fields: ${allowed.join(", ")}`);
    }
  }
}

function optBool(body: Record<string, unknown>, name: string): boolean {
  const v = body[name];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new HttpError(400, `Field '${name}' must be true or false`);
  return v;
}

function optInt(body: Record<string, unknown>, name: string, min: number, max: number, dflt: number): number {
  const v = body[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new HttpError(400, `Field '${name}' must be an integer`);
  }
  if (v < min || v > max) {
    throw new HttpError(400, `Field '${name}' must be between ${min} and ${max} (got ${v})`);
  }
  return v;
}

export function createApp(options: AppOptions): App {
  const pipeline = options.pipeline;
  const metrics = new Metrics();
  const log = options.log ?? (() => {});
  const maxQueue = options.maxQueue ?? 16;
  const maxBody = options.maxBodyBytes ?? 16 * 1024;
  const maxCompletionBody = options.maxCompletionBodyBytes ?? 12 * 1024 * 1024;
  const maxPromptChars = options.maxPromptChars ?? 1000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const token = options.token;
  const hosts = options.hosts ?? allowedHosts("127.0.0.1");
  const queue = new JobQueue({
    pipeline,
    metrics,
    maxQueue,
    maxFinished: options.maxFinished ?? 64,
    ttlMs: options.ttlMs ?? 3600_000,
    outDir: options.outDir,
    log,
  });
  const streams = new Set<() => void>();
  let closing = false;

  function common(body: Record<string, unknown>) {
    const info = pipeline.info();
    const prompt = body.prompt;
    if (prompt === undefined) throw new HttpError(400, "Field 'prompt' is required");
    if (typeof prompt !== "string") throw new HttpError(400, "Field 'prompt' must be a string");
    if (prompt.trim().length === 0) throw new HttpError(400, "Field 'prompt' is empty");
    if (prompt.length > maxPromptChars) {
      throw new HttpError(
        400,
        `Field 'prompt' is too long: ${prompt.length} characters, the limit is ${maxPromptChars}`,
      );
    }
    const style = body.style ?? info.defaultStyle;
    if (typeof style !== "string" || !info.styles.includes(style)) {
      throw new HttpError(
        400,
        `Field 'style' must be one of ${info.styles.join(", ")} (got ${JSON.stringify(style)})`,
      );
    }
    const n = optInt(body, "n", 1, info.maxImages, 1);
    const seed = optInt(body, "seed", 0, MAX_SEED, Math.floor(Math.random() * MAX_SEED));
    const format = body.format ?? "png";
    if (format !== "png" && format !== "jpeg") {
      throw new HttpError(400, `Field 'format' must be "png" or "jpeg" (got ${JSON.stringify(format)})`);
    }
    return {
      prompt: prompt.trim(),
      style,
      n,
      seed,
      format: format as ImageFormat,
      wait: optBool(body, "wait"),
    };
  }

  function parseGenerate(body: Record<string, unknown>): { request: GenerateRequest; wait: boolean } {
    checkFields(body, GENERATE_FIELDS);
    const { wait, ...c } = common(body);
    const request: GenerateRequest = {
      ...c,
      onlyFirstStage: optBool(body, "only_first_stage"),
      inversePrompt: optBool(body, "inverse_prompt"),
    };
    return { request, wait };
  }

  function parseCompletion(body: Record<string, unknown>): { request: CompletionRequest; wait: boolean } {
    checkFields(body, COMPLETION_FIELDS);
    if (!pipeline.info().completion) {
      throw new HttpError(503, "Text-guided completion is not available with this model");
    }
    const { wait, ...c } = common(body);
    if (typeof body.image !== "string" || body.image.length === 0) {
      throw new HttpError(
        400,
        "Field 'image' is required: a base64-encoded PNG or JPEG (a data: URL is accepted)",
      );
    }
    let image: Uint8Array;
    try {
      const b64 = body.image.replace(/^data:image\/[a-z]+;base64,/, "");
      image = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    } catch {
      throw new HttpError(400, "Field 'image' is not valid base64");
    }
    try {
      readImageHeader(image); // format and size from the header: an oversized raster is refused before any decoding
    } catch (e) {
      throw new HttpError(400, `Field 'image': ${e instanceof Error ? e.message : e}`);
    }
    const box = body.box;
    if (
      !Array.isArray(box) || box.length !== 4 ||
      !box.every((v) => typeof v === "number" && Number.isFinite(v))
    ) {
      throw new HttpError(
        400,
        "Field 'box' must be [h0, w0, h1, w1]: fractions (0..1) of the image's rows and columns",
      );
    }
    const [h0, w0, h1, w1] = box as number[];
    if (!(h0 >= 0 && w0 >= 0 && h1 <= 1 && w1 <= 1 && h1 > h0 && w1 > w0)) {
      throw new HttpError(
        400,
        `Field 'box' must satisfy 0 <= h0 < h1 <= 1 and 0 <= w0 < w1 <= 1 (got [${box}])`,
      );
    }
    if (Math.floor(480 * h1) <= Math.floor(480 * h0) || Math.floor(480 * w1) <= Math.floor(480 * w0)) {
      throw new HttpError(400, `Field 'box' [${box}] selects no pixel of the 480×480 image`);
    }
    return { request: { ...c, image, box: [h0, w0, h1, w1] }, wait };
  }

  function jobJson(job: Job) {
    const r = job.input.request;
    const base = `/v1/jobs/${job.id}`;
    const position = job.state === "queued"
      ? [...job.history].reverse().find((e) => e.type === "queued") as { position: number } | undefined
      : undefined;
    return {
      id: job.id,
      kind: job.input.kind,
      state: job.state,
      created_at: new Date(job.createdAt).toISOString(),
      started_at: job.startedAt ? new Date(job.startedAt).toISOString() : null,
      finished_at: job.finishedAt ? new Date(job.finishedAt).toISOString() : null,
      queue_position: position?.position ?? null,
      progress: Math.round(job.progress * 1000) / 1000,
      stage: job.stage ?? null,
      step: job.step ?? null,
      steps: job.steps ?? null,
      error: job.error ?? null,
      request: {
        prompt: r.prompt,
        style: r.style,
        n: r.n,
        seed: r.seed,
        format: r.format,
        ...(job.input.kind === "generate"
          ? {
            only_first_stage: job.input.request.onlyFirstStage,
            inverse_prompt: job.input.request.inversePrompt,
          }
          : { box: job.input.request.box }),
      },
      urls: { self: base, events: `${base}/events` },
      images: job.images.map((img, k) => ({
        url: `${base}/images/${k}`,
        mime: img.mime,
        width: img.width,
        height: img.height,
        ...(img.score !== undefined ? { score: img.score } : {}),
      })),
      previews: job.previews.map((_, k) => `${base}/previews/${k}`),
    };
  }

  async function submit(req: Request, kind: "generate" | "completion"): Promise<Response> {
    if (closing) throw new HttpError(503, "The server is shutting down", { "retry-after": "5" });
    const body = await readJson(req, kind === "generate" ? maxBody : maxCompletionBody);
    const parsed = kind === "generate" ? parseGenerate(body) : parseCompletion(body);
    try {
      await pipeline.validate(parsed.request);
    } catch (e) {
      if (e instanceof PipelineError) throw new HttpError(e.status, e.message);
      throw e;
    }
    let job: Job;
    try {
      job = kind === "generate"
        ? queue.submit({ kind, request: parsed.request as GenerateRequest })
        : queue.submit({ kind, request: parsed.request as CompletionRequest });
    } catch (e) {
      if (e instanceof QueueFullError) {
        throw new HttpError(429, e.message, { "retry-after": String(e.retryAfterSeconds) });
      }
      if (e instanceof ShuttingDownError) throw new HttpError(503, e.message, { "retry-after": "5" });
      throw e;
    }
    if (!parsed.wait) return json(jobJson(job), 202, { location: `/v1/jobs/${job.id}` });
    // Waiting: a client that goes away cancels its job (nobody else knows its id).
    const onAbort = () => queue.cancel(job.id);
    req.signal.addEventListener("abort", onAbort, { once: true });
    await job.finished;
    req.signal.removeEventListener("abort", onAbort);
    if (job.state === "done") return json(jobJson(job), 200);
    if (job.state === "cancelled") return json({ ...jobJson(job), error: "Job cancelled" }, 409);
    return json({ ...jobJson(job), error: job.error }, job.errorStatus ?? 500);
  }

  function events(req: Request, job: Job): Response {
    const enc = new TextEncoder();
    let cleanup = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let open = true;
        let seq = 0;
        const send = (e: JobEvent) => {
          if (!open) return;
          try {
            controller.enqueue(enc.encode(`id: ${seq++}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
          } catch {
            cleanup();
            return;
          }
          if (e.type === "done" || e.type === "error" || e.type === "cancelled") cleanup();
        };
        const keepAlive = setInterval(() => {
          try {
            controller.enqueue(enc.encode(`: keep-alive\n\n`));
          } catch {
            cleanup();
          }
        }, keepAliveMs);
        const unsubscribe = queue.subscribe(job, send);
        cleanup = () => {
          if (!open) return;
          open = false;
          clearInterval(keepAlive);
          unsubscribe();
          streams.delete(cleanup);
          try {
            controller.close();
          } catch { /* already closed by the client */ }
        };
        streams.add(cleanup);
        req.signal.addEventListener("abort", () => cleanup(), { once: true });
        controller.enqueue(enc.encode(`retry: 2000\n\n`));
        for (const e of [...job.history]) send(e);
        if (isTerminal(job.state)) cleanup();
      },
      cancel() {
        cleanup();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  async function image(job: Job, kStr: string, preview: boolean): Promise<Response> {
    if (!/^\d{1,4}$/.test(kStr)) throw new HttpError(404, `No image '${kStr}' in job ${job.id}`);
    const k = Number(kStr);
    const got = await queue.imageBytes(job, k, preview);
    if (!got) {
      const what = preview ? "preview" : "image";
      const have = preview ? job.previews.length : job.images.length;
      throw new HttpError(404, `Job ${job.id} has no ${what} ${k} (it has ${have}; state ${job.state})`);
    }
    if (!preview) metrics.inc("cogview2_images_served_total");
    const ext = got.mime === "image/jpeg" ? "jpg" : "png";
    return new Response(got.data as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": got.mime,
        "content-length": String(got.data.byteLength),
        "cache-control": "private, max-age=3600",
        "content-disposition": `inline; filename="cogview2-${job.id.slice(0, 8)}-${k}.${ext}"`,
      },
    });
  }

  function findJob(id: string): Job {
    const job = /^[0-9a-f-]{36}$/.test(id) ? queue.get(id) : undefined;
    if (!job) throw new HttpError(404, `Unknown job '${id.slice(0, 64)}'`);
    return job;
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const m = req.method;
    const allow = (methods: string[]) => {
      if (!methods.includes(m)) {
        throw new HttpError(405, `Method ${m} is not allowed on ${path}; use ${methods.join(", ")}`, {
          allow: methods.join(", "),
        });
      }
    };
    if (path === "/") {
      allow(["GET", "HEAD"]);
      return new Response(renderPage(), {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    }
    if (path === "/healthz") {
      allow(["GET", "HEAD"]);
      return json({
        status: closing ? "shutting_down" : "ok",
        queue_depth: queue.queueDepth,
        running: queue.running ? queue.running.id : null,
      }, closing ? 503 : 200);
    }
    if (path === "/metrics") {
      allow(["GET"]);
      return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
    }
    if (path === "/v1/model") {
      allow(["GET"]);
      const info = pipeline.info();
      return json({
        name: info.name,
        demo: info.demo,
        notice: info.notice,
        styles: info.styles,
        default_style: info.defaultStyle,
        completion: info.completion,
        limits: {
          max_images: info.maxImages,
          max_prompt_tokens: info.maxPromptTokens,
          max_prompt_chars: maxPromptChars,
          max_inference_batch: info.maxInferenceBatch,
          max_queue: maxQueue,
          max_body_bytes: maxBody,
          max_completion_body_bytes: maxCompletionBody,
        },
        details: info.details,
        ...(pipeline.memory?.() ? { memory: pipeline.memory!() } : {}),
      });
    }
    if (path === "/v1/images") {
      allow(["POST"]);
      return await submit(req, "generate");
    }
    if (path === "/v1/completions") {
      allow(["POST"]);
      return await submit(req, "completion");
    }
    if (path === "/v1/jobs") {
      allow(["GET"]);
      // The store's own bound applies (finished jobs: maxFinished, 1 h; waiting: maxQueue; one running).
      const now = Date.now();
      return json({
        jobs: queue.list().map((job) => ({
          id: job.id,
          kind: job.input.kind,
          state: job.state,
          prompt: job.input.request.prompt,
          created_at: new Date(job.createdAt).toISOString(),
          seconds: job.startedAt ? Math.round(((job.finishedAt ?? now) - job.startedAt) / 10) / 100 : null,
          url: `/v1/jobs/${job.id}`,
        })),
      });
    }
    const jm = path.match(/^\/v1\/jobs\/([^/]+)(?:\/(events|images|previews)(?:\/([^/]+))?)?$/);
    if (jm) {
      const [, id, sub, k] = jm;
      if (!sub) {
        allow(["GET", "DELETE"]);
        const job = findJob(id);
        if (m === "DELETE") {
          if (isTerminal(job.state)) {
            await queue.remove(job.id);
            return json({ id: job.id, state: job.state, deleted: true });
          }
          queue.cancel(job.id);
          return json({ ...jobJson(job), cancel_requested: true }, 202);
        }
        return json(jobJson(job));
      }
      allow(["GET"]);
      const job = findJob(id);
      if (sub === "events" && k === undefined) return events(req, job);
      if ((sub === "images" || sub === "previews") && k !== undefined) {
        return await image(job, k, sub === "previews");
      }
    }
    throw new HttpError(404, `No route for ${m} ${path}`);
  }

  /** The Host check (DNS rebinding), the Origin check (cross-site pages) and the token; null when allowed. */
  function checkAccess(req: Request, url: URL, path: string): Response | null {
    const host = req.headers.get("host");
    if (!host || !hosts.has(hostName(host))) {
      return errorResponse(
        421,
        `Host '${
          (host ?? "").slice(0, 100)
        }' is not served here; start the server with --allow-host NAME to allow it`,
      );
    }
    const origin = req.headers.get("origin");
    if (origin && origin !== "null") {
      let oh = "";
      try {
        oh = new URL(origin).hostname.replace(/^\[|\]$/g, "");
      } catch { /* not a URL: refused below */ }
      if (!hosts.has(oh)) {
        return errorResponse(403, `Cross-origin request from '${origin.slice(0, 100)}' refused`);
      }
    }
    if (token === undefined || path === "/healthz") return null;
    const given = requestToken(req, url);
    if (!tokenMatches(given, token)) {
      return errorResponse(
        401,
        given === null
          ? "This server needs its token: open /?token=TOKEN in the browser, or send Authorization: Bearer TOKEN"
          : "Wrong token",
        { "www-authenticate": 'Bearer realm="cogview2"' },
      );
    }
    // The page's first load carries ?token=: keep it in an HttpOnly cookie and drop it from the address bar.
    if (url.searchParams.has("token") && (req.method === "GET" || req.method === "HEAD") && path === "/") {
      return new Response(null, {
        status: 303,
        headers: {
          location: "/",
          "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
          "cache-control": "no-store",
        },
      });
    }
    return null;
  }

  async function handler(req: Request): Promise<Response> {
    let res: Response;
    try {
      const url = new URL(req.url);
      res = checkAccess(req, url, url.pathname.replace(/\/+$/, "") || "/") ?? await route(req);
    } catch (e) {
      if (e instanceof HttpError) res = errorResponse(e.status, e.message, e.headers);
      else {
        log(
          `internal error on ${req.method} ${new URL(req.url).pathname}: ${e instanceof Error ? e.stack : e}`,
        );
        res = errorResponse(500, `Internal error: ${e instanceof Error ? e.message : e}`);
      }
    }
    metrics.inc("cogview2_http_requests_total", { code: String(res.status) });
    return res;
  }

  async function close(graceMs = 10_000): Promise<void> {
    closing = true;
    await queue.close(graceMs);
    // Terminal events have closed the job streams; close any left (subscribers of vanished jobs).
    for (const c of [...streams]) c();
  }

  return { handler, queue, metrics, close };
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  app: App;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
  /** Graceful stop: no new connections, running job finished or cancelled, streams closed. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Starts Deno.serve on host:port (port 0 picks a free one) with the app's handler. */
export function startServer(
  app: App,
  options: { port: number; host: string; onListen?: (url: string) => void },
): Promise<RunningServer> {
  const server = Deno.serve({
    port: options.port,
    hostname: options.host,
    onListen: () => {},
    onError: (e) => errorResponse(500, `Internal error: ${e instanceof Error ? e.message : e}`),
  }, app.handler);
  const { hostname, port } = server.addr as Deno.NetAddr;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  options.onListen?.(url);
  let stopping: Promise<void> | null = null;
  return Promise.resolve({
    url,
    port,
    app,
    finished: server.finished,
    shutdown(graceMs?: number) {
      return stopping ??= (async () => {
        await app.close(graceMs);
        await server.shutdown();
      })();
    },
  });
}
