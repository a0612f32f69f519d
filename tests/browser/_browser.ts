// Shared steps of the browser tests: start a server process, drive the page in headless Chromium (Debian's
// /usr/bin/chromium through npm:playwright-core, no browser download). Not a test itself.
/// <reference lib="dom" />

import nodeAssert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- npm: specifiers are the project convention (no import map)
import type { Page } from "npm:playwright-core@1.49.1";

export type { Page };

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
/** COGVIEW2_NO_BROWSER=1 skips the browser tests on purpose (README). */
const optedOut = Deno.env.get("COGVIEW2_NO_BROWSER") === "1";
const chromiumFound = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
/** The browser tests run (else they are `ignore`d, with the reason printed by warnSkipped). */
export const hasChromium = chromiumFound && !optedOut;

/** Prints why a browser test is skipped (call at module level). */
export function warnSkipped(file: string): void {
  if (hasChromium) return;
  console.warn(
    optedOut
      ? `${file}: SKIPPED — COGVIEW2_NO_BROWSER=1.`
      : `${file}: SKIPPED — no Chromium at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` ` +
        "(or set CHROMIUM_PATH).",
  );
}

export const root = new URL("../../", import.meta.url).pathname;

async function startServer(
  args: string[],
): Promise<{ url: string; child: Deno.ChildProcess; log: () => string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", ...args],
    cwd: root,
    env: { COGVIEW2_CACHE: `${root}.cache`, XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 120_000;
  while (!/listening on (http:\S+)/.test(text)) {
    if (Date.now() > deadline) throw new Error(`The server did not start in 120 s:\n${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`The server exited before listening:\n${text}`);
    text += value;
  }
  // Keep draining the log so the child never blocks on a full pipe.
  (async () => {
    while (true) {
      const { value, done } = await reader.read().catch(() => ({ value: "", done: true }));
      if (done) break;
      text += value;
    }
  })();
  return { url: text.match(/listening on (http:\S+)/)![1], child, log: () => text };
}

export interface Flow {
  n: number;
  notice: RegExp;
  /** Output screenshot name under out/browser/. */
  shot: string;
  /** Tick "first stage only" (CogLM and the VQ-VAE at 160×160, upscaled to 480×480). */
  firstStageOnly?: boolean;
  /** How long previews and images may take (default 240 s). */
  timeoutMs?: number;
}

/** Types a prompt, presses Generate, checks that progress moves and previews + images + download links appear. */
export async function generateFlow(page: Page, url: string, flow: Flow) {
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("#style option").length >= 3);
  nodeAssert.match((await page.textContent("#notice")) ?? "", flow.notice);
  await page.fill("#prompt", "a red apple on a wooden table");
  await page.fill("#n", String(flow.n));
  await page.fill("#seed", "42");
  await page.selectOption("#style", "photo");
  if (flow.firstStageOnly) await page.check("#only_first_stage");
  // Record every progress value the bar shows while the job runs.
  await page.evaluate(() => {
    const w = window as unknown as { seen: number[] };
    w.seen = [];
    const bar = document.getElementById("bar") as HTMLProgressElement;
    setInterval(() => w.seen.push(bar.value), 20);
  });
  await page.click("#generate");
  await page.waitForFunction((n) => document.querySelectorAll("#previews img").length === n, flow.n, {
    timeout: flow.timeoutMs ?? 240_000,
  });
  await page.waitForFunction(
    (n) => {
      const imgs = [...document.querySelectorAll("#results img")] as HTMLImageElement[];
      return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth === 480);
    },
    flow.n,
    { timeout: flow.timeoutMs ?? 240_000 },
  );
  nodeAssert.match(
    (await page.textContent("#status")) ?? "",
    new RegExp(`done: ${flow.n} image\\(s\\), seed 42`),
  );
  const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
  const distinct = [...new Set(seen)];
  nodeAssert.ok(distinct.length >= 3, `the progress bar moved through several values: ${distinct}`);
  nodeAssert.equal(await page.$eval("#bar", (e) => (e as HTMLProgressElement).value), 1);
  const previewSizes = await page.$$eval(
    "#previews img",
    (els) => els.map((e) => (e as HTMLImageElement).naturalWidth),
  );
  nodeAssert.deepEqual(previewSizes, Array(flow.n).fill(160));
  const links = await page.$$eval("#results a", (els) => els.map((e) => (e as HTMLAnchorElement).href));
  nodeAssert.equal(links.length, flow.n);
  // Through the browser context (its cookies: a server with a token set one on the page's first load).
  const res = await page.request.get(links[0]);
  nodeAssert.equal(res.headers()["content-type"], "image/png");
  const png = new Uint8Array(await res.body());
  nodeAssert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);
  await Deno.mkdir(`${root}out/browser`, { recursive: true });
  await page.screenshot({ path: `${root}out/browser/${flow.shot}`, fullPage: true });
  console.log(`screenshot: ${root}out/browser/${flow.shot}`);
}

export async function withBrowser(
  serverArgs: string[],
  fn: (page: Page, url: string) => Promise<void>,
) {
  // deno-lint-ignore no-import-prefix
  const { chromium } = await import("npm:playwright-core@1.49.1");
  const server = await startServer(serverArgs);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    await fn(page, server.url);
  } finally {
    await browser.close();
    server.child.kill("SIGTERM");
    const status = await server.child.status;
    nodeAssert.equal(status.code, 0, `server exit status; log:\n${server.log()}`);
  }
}
