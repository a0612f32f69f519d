// Test helper: rewrites a float16 torch checkpoint as float32 whose values are NOT float16-representable (each value
// v becomes v·(1 + ε·u) with u uniform in [-1, 1), a relative change below f16's half-ulp so the rounding back to f16
// mostly lands on the original), the kind of file the official icetk tokenizer is.
import { DTYPE_BYTES } from "../../src/formats/safetensors.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { type FakeStorage, type FakeTensor, writeTorchCheckpoint } from "../formats/_torch_writer.ts";
import { rng } from "../_util.ts";

/** Perturbs in place; default: relative 2e-4 (f16's half-ulp is 2^-11 ≈ 4.9e-4), seeded. */
export function perturb(v: Float32Array, seed: number, rel = 2e-4): Float32Array {
  const r = rng(seed);
  for (let i = 0; i < v.length; i++) {
    v[i] = v[i] * (1 + rel * (2 * r() - 1)) + (v[i] === 0 ? rel * (r() - 0.5) : 0);
  }
  return v;
}

/**
 * Writes `dst` as a float32 copy of the float16 checkpoint `src`, each tensor passed through `edit` (default:
 * `perturb`). `wrap`: SAT checkpoints keep their {'module': ...} wrapper; icetk's is a bare state dict.
 */
export async function writeF32Checkpoint(
  src: string,
  dst: string,
  o: { wrap: boolean; edit?: (name: string, v: Float32Array, index: number) => void },
): Promise<void> {
  const ck = await openTorchCheckpoint(src);
  const storages: FakeStorage[] = [];
  const tensors: FakeTensor[] = [];
  try {
    let i = 0;
    for (const n of ck.names()) {
      const info = ck.info(n);
      const key = String(storages.length);
      const bytes = (await ck.read(n)).slice();
      if (info.dtype !== "f16") {
        storages.push({
          key,
          dtype: info.dtype as FakeStorage["dtype"],
          numel: bytes.length / DTYPE_BYTES[info.dtype],
          data: bytes,
        });
      } else {
        const v = Float32Array.from(new Float16Array(bytes.buffer));
        if (o.edit) o.edit(n, v, i);
        else perturb(v, 1000 + i);
        storages.push({ key, dtype: "f32", numel: v.length, data: new Uint8Array(v.buffer) });
      }
      tensors.push({ name: n, storage: key, shape: info.shape });
      i++;
    }
  } finally {
    ck.close();
  }
  await writeTorchCheckpoint(dst, { storages, tensors, wrap: o.wrap, archive: "archive" });
}
