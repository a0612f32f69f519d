// readEnv caches what it read (the launchers read their switches on every launch); a change made through
// Deno.env.set / Deno.env.delete must show at the next read, as the tests that flip switches between cases rely on.
import assert from "node:assert/strict";
import { readEnv } from "../../src/gpu/env.ts";
import { GEMV_ENV, gemvVariantName } from "../../src/kernels/gemv.ts";
import { gemvChoice } from "../../src/kernels/choices.ts";
import { sharedContext } from "../_util.ts";

Deno.test("readEnv follows Deno.env.set / delete after caching a value (unset, set, changed, deleted)", () => {
  const name = "COGVIEW2_ENV_CACHE_TEST";
  Deno.env.delete(name);
  assert.equal(readEnv(name), undefined);
  assert.equal(readEnv(name), undefined, "an unset variable read twice");
  Deno.env.set(name, "a");
  assert.equal(readEnv(name), "a");
  assert.equal(readEnv(name), "a");
  Deno.env.set(name, "b");
  assert.equal(readEnv(name), "b");
  Deno.env.delete(name);
  assert.equal(readEnv(name), undefined);
});

Deno.test("a launcher's switch read on every launch follows Deno.env (COGVIEW2_GEMV between two gemvVariantName calls)", async () => {
  const ctx = (await sharedContext()).withGpuSchedules();
  const saved = Deno.env.get(GEMV_ENV);
  try {
    Deno.env.delete(GEMV_ENV);
    const table = gemvChoice(ctx, 1);
    assert.equal(gemvVariantName(ctx, { M: 1 }), table);
    const other = table === "u2" ? "u4" : "u2";
    Deno.env.set(GEMV_ENV, other);
    assert.equal(gemvVariantName(ctx, { M: 1 }), other);
    Deno.env.delete(GEMV_ENV);
    assert.equal(gemvVariantName(ctx, { M: 1 }), table);
  } finally {
    if (saved === undefined) Deno.env.delete(GEMV_ENV);
    else Deno.env.set(GEMV_ENV, saved);
  }
});
