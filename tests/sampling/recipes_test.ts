import assert from "node:assert/strict";
import { DEFAULT_STYLE, getRecipe, STYLES } from "../../src/sampling/recipes.ts";

Deno.test("recipes: 10 styles in the original order, default mainbody", () => {
  assert.deepEqual([...STYLES], [
    "none",
    "mainbody",
    "photo",
    "flat",
    "comics",
    "oil",
    "sketch",
    "isometric",
    "chinese",
    "watercolor",
  ]);
  assert.equal(DEFAULT_STYLE, "mainbody");
  assert.equal(getRecipe().style, "mainbody");
  for (const s of STYLES) {
    const r = getRecipe(s);
    assert.ok(r.template.includes("{}") && r.template.endsWith("<start_of_image>"), s);
    assert.equal(r.template, r.query_template);
    assert.equal(r.temperature, r.temp_all_gen);
    assert.equal(r.topk, r.topk_gen);
    assert.equal(r.top_k_cluster, r.temp_cluster_gen);
    assert.equal(r.attn_plus, 1.4);
  }
  assert.throws(() => getRecipe("nope"), /Unknown style/);
});

Deno.test("recipes: values of get_recipe", () => {
  const m = getRecipe("mainbody");
  assert.equal(m.template, "{} 高清摄影 隔绝<start_of_image>");
  assert.deepEqual([m.temp_all_gen, m.topk_gen, m.temp_cluster_gen], [1.15, 16, 1]);
  assert.deepEqual([m.temp_all_dsr, m.topk_dsr, m.temp_cluster_dsr], [1.5, 100, 0.89]);
  assert.deepEqual([m.temp_all_itersr, m.topk_itersr], [1.3, 16]);
  assert.equal(getRecipe("none").template, "{}<start_of_image>");
  const f = getRecipe("flat");
  assert.equal(f.template, "{} 平面风格<start_of_image>");
  assert.deepEqual([f.temp_all_gen, f.topk_dsr, f.temp_cluster_dsr, f.temp_all_itersr, f.topk_itersr], [
    1.1,
    5,
    0.4,
    1,
    5,
  ]);
  const c = getRecipe("comics");
  assert.equal(c.template, "{} 漫画 隔绝<start_of_image>");
  assert.deepEqual([c.temp_all_gen, c.topk_dsr, c.temp_cluster_dsr, c.temp_all_itersr, c.topk_itersr], [
    1.1,
    5,
    0.4,
    1,
    5,
  ]);
  assert.equal(getRecipe("sketch").temp_all_gen, 1.1);
  assert.equal(getRecipe("isometric").temp_all_gen, 1.1);
  assert.equal(getRecipe("chinese").temp_all_gen, 1.12);
  assert.equal(getRecipe("chinese").template, "{} 水墨国画<start_of_image>");
  assert.equal(getRecipe("oil").template, "{} 油画风格<start_of_image>");
  assert.equal(getRecipe("watercolor").template, "{} 水彩画风格<start_of_image>");
  assert.equal(getRecipe("photo").template, "{} 高清摄影<start_of_image>");
  assert.equal(getRecipe("isometric").template, "{} 等距矢量图<start_of_image>");
});
