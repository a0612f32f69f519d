// Conformance kind `icetk_text`: icetk's text tokenizer (SentencePiece + icetk wrapper) against golden records of
// encode / tokenize / decode / id↔token lookups and the model facts. Exact equality everywhere; no GPU involved.

import { IceTokenizer } from "../tokenizer/icetk.ts";
import { ModelType } from "../tokenizer/protobuf.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

export interface IcetkTextReport {
  /** Number of individual comparisons made. */
  checks: number;
  /** One line per mismatch: what was compared, expected and got. */
  mismatches: string[];
}

const j = (v: unknown) => JSON.stringify(v);

interface EncodeRecord {
  text: string;
  ignore_linebreak?: boolean;
  tag?: string;
  ids: number[];
  pieces?: string[];
  tokenize?: string[];
  decoded?: string;
}

/** Compares a tokenizer with an `icetk_text` case's `expected` block; every field the case carries is checked. */
export function checkIcetkText(t: IceTokenizer, c: GoldenCase): IcetkTextReport {
  // deno-lint-ignore no-explicit-any
  const e = c.expected as Record<string, any>;
  const mismatches: string[] = [];
  let checks = 0;
  const eq = (what: string, got: unknown, want: unknown) => {
    checks++;
    if (j(got) !== j(want)) mismatches.push(`${what}: expected ${j(want)}, got ${j(got)}`);
  };
  const sp = t.processor;
  if ("model_type" in e) eq("model_type", sp.modelType === ModelType.BPE ? "bpe" : "unigram", e.model_type);
  const ns = sp.proto.normalizerSpec;
  if ("normalizer" in e) eq("normalizer", ns.name, e.normalizer);
  if ("add_dummy_prefix" in e) eq("add_dummy_prefix", ns.addDummyPrefix, e.add_dummy_prefix);
  if ("remove_extra_whitespaces" in e) {
    eq("remove_extra_whitespaces", ns.removeExtraWhitespaces, e.remove_extra_whitespaces);
  }
  if ("byte_fallback" in e) eq("byte_fallback", sp.proto.trainerSpec.byteFallback, e.byte_fallback);
  const added = (c.inputs.special_tokens_added ?? []) as string[];
  if ("text_pieces_before_special_tokens" in e) {
    eq(
      "text_pieces_before_special_tokens",
      t.numTextTokens - added.length,
      e.text_pieces_before_special_tokens,
    );
  }
  if ("num_text_tokens" in e) eq("num_text_tokens", t.numTextTokens, e.num_text_tokens);
  if ("num_tokens" in e) eq("num_tokens", t.numTokens, e.num_tokens);
  for (const [tok, id] of Object.entries((e.special_token_ids ?? {}) as Record<string, number>)) {
    eq(`special_token_ids[${tok}]`, t.tokenToId(tok), id);
  }
  for (
    const [tok, rec] of Object.entries(
      (e.special_tokens_single_id_in_text ?? {}) as Record<
        string,
        { probe: string; ids: number[]; single_id: boolean }
      >,
    )
  ) {
    const ids = t.encode(rec.probe);
    eq(`special probe ${j(rec.probe)} ids`, ids, rec.ids);
    eq(`special probe ${j(rec.probe)} single_id`, ids.includes(t.tokenToId(tok)), rec.single_id);
  }
  const records = (e.encode ?? []) as EncodeRecord[];
  if ("template_last_id_is_start_of_image" in e) {
    const soi = t.tokenToId("<start_of_image>");
    const templates = records.filter((r) => r.tag === "template");
    const got = templates.length > 0 &&
      templates.every((r) => t.encode(r.text, { ignoreLinebreak: r.ignore_linebreak }).at(-1) === soi);
    eq("template_last_id_is_start_of_image", got, e.template_last_id_is_start_of_image);
  }
  records.forEach((r, i) => {
    const where = `encode[${i}] (${r.tag}) ${j(r.text).slice(0, 60)}`;
    const ids = t.encode(r.text, { ignoreLinebreak: r.ignore_linebreak ?? true });
    if ("ids" in r) eq(`${where} ids`, ids, r.ids);
    if ("pieces" in r) eq(`${where} pieces`, r.ids.map((id) => t.idToToken(id)), r.pieces);
    if ("tokenize" in r) eq(`${where} tokenize`, t.tokenize(r.text), r.tokenize);
    if ("decoded" in r) eq(`${where} decoded`, t.decode(r.ids), r.decoded);
  });
  for (const r of (e.id_to_token ?? []) as { id: number; token: string }[]) {
    eq(`id_to_token[${r.id}]`, t.idToToken(r.id), r.token);
  }
  for (const r of (e.token_to_id ?? []) as { token: string; id: number }[]) {
    eq(`token_to_id[${j(r.token)}]`, t.tokenToId(r.token), r.id);
  }
  for (const r of (e.decode ?? []) as { ids: number[]; text: string }[]) {
    eq(`decode ${j(r.ids).slice(0, 60)}`, t.decode(r.ids), r.text);
  }
  return { checks, mismatches };
}

/** Loads the case's text model (path relative to the set root) with its special tokens and checks it. */
export async function icetkText(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const t0 = performance.now();
  const t = await IceTokenizer.fromFile(cx.path(c.inputs.text_model), {
    specialTokens: c.inputs.special_tokens_added ?? [],
  });
  const { checks, mismatches } = checkIcetkText(t, c);
  const n = (c.expected.encode ?? []).length;
  const ms = (performance.now() - t0).toFixed(0);
  if (mismatches.length === 0) {
    return {
      pass: true,
      detail: `${checks} checks exact (${n} encode records, ${t.numTokens} tokens), ${ms} ms`,
    };
  }
  return {
    pass: false,
    detail: `${mismatches.length}/${checks} mismatches; first: ${mismatches.slice(0, 3).join(" | ")}`,
  };
}
