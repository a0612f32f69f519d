// The page's UI in headless Chromium against the scriptable pipeline (tests/browser/_serve_fake_page.ts): type a
// prompt, press Generate, see progress move, previews and images appear, cancel, errors shown; saves a screenshot.
// Not the model: demo_page_test.ts runs the same flow on `main.ts serve` with the demo model.
// Needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium); skipped with a message without it.

import nodeAssert from "node:assert/strict";
import { generateFlow, hasChromium, warnSkipped, withBrowser } from "./_browser.ts";

warnSkipped("tests/browser/page_test.ts");

Deno.test({
  name: "page UI (scriptable pipeline): generate shows progress, previews, images; cancel and errors show",
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withBrowser(["tests/browser/_serve_fake_page.ts"], async (page, url) => {
      await generateFlow(page, url, { n: 3, notice: /Demo model: A test pipeline/, shot: "page_ui.png" });
      // Cancel a running job from the page.
      await page.fill("#n", "1");
      await page.click("#generate");
      await page.waitForFunction(() => /stage/.test(document.getElementById("status")!.textContent ?? ""));
      await page.click("#cancel");
      await page.waitForFunction(() => document.getElementById("status")!.textContent === "cancelled");
      nodeAssert.equal(await page.isDisabled("#generate"), false);
      // A request the server rejects shows its message (the page does not block 9 images; the model allows 8).
      await page.evaluate(() => (document.getElementById("n") as HTMLInputElement).max = "99");
      await page.fill("#n", "9");
      await page.click("#generate");
      await page.waitForFunction(() => document.getElementById("status")!.className === "error");
      nodeAssert.match((await page.textContent("#status")) ?? "", /'n' must be between 1 and 8/);
    });
  },
});

Deno.test({
  name:
    "page UI with a token: refused without it; opened once at /?token=, the page generates (cookie carries it)",
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const token = "page-test-token-" + crypto.randomUUID();
    await withBrowser(["tests/browser/_serve_fake_page.ts", "--token", token], async (page, url) => {
      const bare = await page.goto(url);
      nodeAssert.equal(bare?.status(), 401);
      nodeAssert.match((await page.textContent("body")) ?? "", /needs its token/);
      await generateFlow(page, `${url}/?token=${token}`, {
        n: 2,
        notice: /Demo model/,
        shot: "page_token.png",
      });
      nodeAssert.equal(new URL(page.url()).search, "", "the token left the address bar");
    });
  },
});
