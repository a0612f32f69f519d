// End to end in headless Chromium: `main.ts serve` on the demo model, type a prompt, press Generate, watch the
// progress bar move and the previews and 480×480 images appear; saves a screenshot. Not a layout test. First stage
// only (CogLM + VQ-VAE): the whole pipeline on lavapipe takes minutes; tests/pipeline/text2image_test.ts covers it.
// Needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium); skipped with a message without it.

import { generateFlow, hasChromium, warnSkipped, withBrowser } from "./_browser.ts";

warnSkipped("tests/browser/demo_page_test.ts");

Deno.test({
  name: "page end to end (main.ts serve, demo model): prompt → Generate → progress, previews, 480×480 images",
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withBrowser(["main.ts", "serve", "--port", "0", "--host", "127.0.0.1"], async (page, url) => {
      await generateFlow(page, url, {
        n: 1,
        notice: /Demo model:.*noise.*deno task convert/s,
        shot: "page_demo.png",
        firstStageOnly: true,
        timeoutMs: 80_000,
      });
    });
  },
});
