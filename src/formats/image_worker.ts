// The Worker behind decodePreprocessOffThread (image.ts): decodes one PNG/JPEG and runs icetk's preprocessing off the
// caller's event loop. Not a pool: one worker per image, terminated after its answer.

import { decodeImage, preprocessRgba8 } from "./image.ts";

/** The worker global as this module uses it (the project's lib is deno.window, not the worker lib). */
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<{ bytes: Uint8Array; size: number }>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = (e) => {
  try {
    const img = decodeImage(e.data.bytes);
    const image = preprocessRgba8(img.data, img.height, img.width, e.data.size);
    scope.postMessage({ ok: { width: img.width, height: img.height, image } }, [image.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
