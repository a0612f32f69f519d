// icetk's text side (THUDM/icetk IceTokenizer + TextTokenizer): SentencePiece ids offset by the 20000 image codes,
// special tokens appended at load time as NORMAL pieces with score 0, `\n` ↔ `<n>`, `<image_N>` names.
// Not the image tokenizer (VQ-VAE): see src/models/vqvae.ts.

import { SentencePieceProcessor } from "./sentencepiece.ts";
import { decodeModelProto, type ModelProto, PieceType } from "./protobuf.ts";

/** icetk's num_image_tokens: text ids start here. */
export const NUM_IMAGE_TOKENS = 20000;

/** The tokens CogView2 adds with `tokenizer.add_special_tokens(...)`. */
export const COGVIEW2_SPECIAL_TOKENS = ["<start_of_image>", "<start_of_english>", "<start_of_chinese>"];

export interface IceTokenizerOptions {
  /** Tokens appended as NORMAL pieces with score 0 (icetk add_special_tokens); default CogView2's three. */
  specialTokens?: string[];
}

export interface EncodeOptions {
  /** icetk's ignore_linebreak (default true): when false, `\n` becomes `<n>` before SentencePiece sees the text. */
  ignoreLinebreak?: boolean;
}

export class IceTokenizer {
  private sp: SentencePieceProcessor;

  private constructor(private readonly proto: ModelProto, specialTokens: string[]) {
    for (const piece of specialTokens) proto.pieces.push({ piece, score: 0, type: PieceType.NORMAL });
    this.sp = new SentencePieceProcessor(proto);
  }

  /** Reads an `ice_text.model` (SentencePiece ModelProto) and adds the special tokens. */
  static async fromFile(path: string, options: IceTokenizerOptions = {}): Promise<IceTokenizer> {
    return IceTokenizer.fromBytes(await Deno.readFile(path), options);
  }

  static fromBytes(bytes: Uint8Array, options: IceTokenizerOptions = {}): IceTokenizer {
    // Appending before the one processor build gives the same model as icetk's add_special_tokens + refresh.
    return new IceTokenizer(decodeModelProto(bytes), options.specialTokens ?? COGVIEW2_SPECIAL_TOKENS);
  }

  /** icetk add_special_tokens: appends NORMAL pieces with score 0 and rebuilds the processor. */
  addSpecialTokens(tokens: string[]): void {
    for (const piece of tokens) this.proto.pieces.push({ piece, score: 0, type: PieceType.NORMAL });
    this.sp = new SentencePieceProcessor(this.proto);
  }

  /** icetk discourage_tokens: every piece equal to one of `tokens` gets score -100. */
  discourageTokens(tokens: string | string[]): void {
    const set = new Set(typeof tokens === "string" ? [tokens] : tokens);
    for (const p of this.proto.pieces) if (set.has(p.piece)) p.score = -100;
    this.sp = new SentencePieceProcessor(this.proto);
  }

  /** icetk discourage_ids: the pieces with these text-model ids (no +20000 offset, as icetk) get score -100. */
  discourageIds(ids: number | number[]): void {
    for (const id of typeof ids === "number" ? [ids] : ids) {
      const p = this.proto.pieces.at(id); // Python list indexing: negative ids count from the end
      if (!p) throw new RangeError(`discourageIds: id ${id} is out of range`);
      p.score = -100;
    }
    this.sp = new SentencePieceProcessor(this.proto);
  }

  /** The SentencePiece processor underneath (text ids without the offset). */
  get processor(): SentencePieceProcessor {
    return this.sp;
  }

  get numImageTokens(): number {
    return NUM_IMAGE_TOKENS;
  }

  get numTextTokens(): number {
    return this.sp.size;
  }

  get numTokens(): number {
    return NUM_IMAGE_TOKENS + this.sp.size;
  }

  /** icetk.encode(text, ignore_linebreak): SentencePiece ids + 20000. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (options.ignoreLinebreak === false) text = text.replaceAll("\n", "<n>");
    return this.sp.encodeIds(text).map((id) => id + NUM_IMAGE_TOKENS);
  }

  /** icetk.decode(text_ids=ids): SentencePiece decode of ids − 20000, then every `<n>` → `\n`. */
  decode(ids: ArrayLike<number>): string {
    const local: number[] = [];
    for (let i = 0; i < ids.length; i++) local.push(Number(ids[i]) - NUM_IMAGE_TOKENS);
    return this.sp.decodeIds(local).replaceAll("<n>", "\n");
  }

  /** icetk.tokenize(text): the pieces of the raw text (no `<n>` mapping). */
  tokenize(text: string): string[] {
    return this.sp.encodePieces(text);
  }

  /**
   * icetk[str]: `<image_N>` → N (no range check; N in any Unicode decimal digits, as Python's int() reads them),
   * else PieceToId + 20000 (unknown → 20000, the `<unk>` id).
   */
  tokenToId(token: string): number {
    const m = /^<image_(\p{Nd}+)>$/u.exec(token);
    if (m) return decimalValue(m[1]);
    return this.sp.pieceToId(token) + NUM_IMAGE_TOKENS;
  }

  /** icetk[int]: `<image_N>` below 20000, else the text piece. */
  idToToken(id: number): string {
    if (id < NUM_IMAGE_TOKENS) return `<image_${id}>`;
    return this.sp.idToPiece(id - NUM_IMAGE_TOKENS);
  }
}

const ND = /^\p{Nd}$/u;

/** Value of a string of Unicode decimal digits (each Nd block is runs of ten consecutive code points, 0 to 9). */
function decimalValue(digits: string): number {
  let v = 0;
  for (const ch of digits) {
    const cp = ch.codePointAt(0)!;
    let start = cp;
    while (ND.test(String.fromCodePoint(start - 1))) start--;
    v = v * 10 + ((cp - start) % 10);
  }
  return v;
}
