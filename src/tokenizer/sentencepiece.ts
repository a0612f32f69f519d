// SentencePiece encoding and decoding in TypeScript, mirroring sentencepiece 0.1.97 (the version icetk's fixtures
// were made with): unigram (the optimized Viterbi with its float32 scores) and BPE models, the precompiled-charsmap
// normalizer, user-defined pieces, unknown-run merging, byte fallback and decode. Not a trainer; no sampling/n-best.

import { encodeUtf8Into, Normalizer, oneCharLen, PrefixMatcher, validCharLen } from "./normalizer.ts";
import { decodeModelProto, type ModelProto, ModelType, PieceType, type SentencePiece } from "./protobuf.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");
const SPACE_SYMBOL = "\u2581";
const DEFAULT_UNK_SURFACE = " \u2047 ";
const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;

/** One encoded piece: its id and its (normalized) text. */
export interface EncodedPiece {
  id: number;
  piece: string;
}

/**
 * A byte trie of the vocabulary. Edges live in one open-addressing hash table of typed arrays, keyed
 * node * 256 + byte (linear probing, load factor <= 1/2): O(1) steps without per-edge objects.
 */
class PieceTrie {
  private readonly keys: Int32Array;
  private readonly targets: Int32Array;
  private readonly mask: number;
  private readonly shift: number;
  private readonly values: Int32Array;

  constructor(entries: [Uint8Array, number][]) {
    let edges = 0;
    for (const [k] of entries) edges += k.length;
    let cap = 16;
    while (cap < edges * 2) cap *= 2;
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    this.keys = new Int32Array(cap).fill(-1);
    this.targets = new Int32Array(cap);
    const values: number[] = [-1];
    for (const [key, id] of entries) {
      let node = 0;
      for (const b of key) {
        let n = this.step(node, b);
        if (n < 0) {
          n = values.length;
          values.push(-1);
          const k = node * 256 + b;
          let h = this.hash(k);
          while (this.keys[h] !== -1) h = (h + 1) & this.mask;
          this.keys[h] = k;
          this.targets[h] = n;
        }
        node = n;
      }
      values[node] = id;
    }
    this.values = Int32Array.from(values);
  }

  /** Fibonacci hashing: the top log2(cap) bits of k · 2^32/φ. */
  private hash(k: number): number {
    return Math.imul(k, 0x9e3779b1) >>> this.shift;
  }

  /** The child of `node` along byte `b`, or -1. */
  step(node: number, b: number): number {
    const k = node * 256 + b;
    const keys = this.keys, mask = this.mask;
    for (let h = Math.imul(k, 0x9e3779b1) >>> this.shift;; h = (h + 1) & mask) {
      const x = keys[h];
      if (x === k) return this.targets[h];
      if (x === -1) return -1;
    }
  }

  /** The id stored at `node`, or -1. */
  value(node: number): number {
    return this.values[node];
  }

  /** Id of exactly s[start..end), or -1. */
  lookup(s: Uint8Array, start: number, end: number): number {
    let node = 0;
    for (let i = start; i < end && node >= 0; i++) node = this.step(node, s[i]);
    return node >= 0 ? this.values[node] : -1;
  }
}

/** Byte range of the normalized text with the id the model gave it. */
interface Span {
  start: number;
  end: number;
  id: number;
}

export class SentencePieceProcessor {
  readonly pieces: SentencePiece[];
  readonly modelType: number;
  private readonly pieceIds = new Map<string, number>();
  private readonly reservedIds = new Map<string, number>();
  private readonly trie: PieceTrie;
  private readonly normalizer: Normalizer;
  private readonly matcher: PrefixMatcher;
  private readonly denormalizer: Normalizer | null = null;
  private readonly types: Uint8Array;
  private readonly scores: Float32Array;
  private readonly unkId: number;
  private readonly unkSurface: string;
  private readonly byteFallback: boolean;
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly minScore: number;
  private readonly maxScore: number;

  constructor(readonly proto: ModelProto) {
    this.pieces = proto.pieces;
    this.modelType = proto.trainerSpec.modelType;
    if (this.modelType !== ModelType.UNIGRAM && this.modelType !== ModelType.BPE) {
      throw new Error(
        `SentencePiece model: model type ${this.modelType} is not supported (only UNIGRAM and BPE)`,
      );
    }
    const n = this.pieces.length;
    this.types = new Uint8Array(n);
    this.scores = new Float32Array(n);
    this.byteFallback = proto.trainerSpec.byteFallback;
    let unk = -1;
    const userDefined: Uint8Array[] = [];
    const trieKeys: [Uint8Array, number][] = [];
    let minScore = FLT_MAX, maxScore = FLT_MIN;
    let scratch = new Uint8Array(256);
    for (let i = 0; i < n; i++) {
      const sp = this.pieces[i];
      if (sp.piece === "") throw new Error(`SentencePiece model: piece ${i} is empty`);
      this.types[i] = sp.type;
      this.scores[i] = sp.score;
      const normal = sp.type === PieceType.NORMAL || sp.type === PieceType.USER_DEFINED ||
        sp.type === PieceType.UNUSED;
      const map = normal ? this.pieceIds : this.reservedIds;
      if (map.has(sp.piece)) throw new Error(`SentencePiece model: ${sp.piece} is already defined`);
      map.set(sp.piece, i);
      if (scratch.length < sp.piece.length * 3) scratch = new Uint8Array(sp.piece.length * 3);
      const bytes = scratch.slice(0, encodeUtf8Into(sp.piece, scratch));
      if (normal) trieKeys.push([bytes, i]);
      if (sp.type === PieceType.USER_DEFINED) userDefined.push(bytes);
      if (sp.type === PieceType.UNKNOWN) {
        if (unk >= 0) throw new Error("SentencePiece model: unk is already defined");
        unk = i;
      }
      if (sp.type === PieceType.BYTE) {
        const m = /^<0x([0-9A-F]{2})>$/.exec(sp.piece);
        if (!this.byteFallback) {
          throw new Error(`SentencePiece model: byte piece ${sp.piece} without byte_fallback`);
        }
        if (!m) throw new Error(`SentencePiece model: byte piece ${sp.piece} is invalid`);
        this.byteIds[parseInt(m[1], 16)] = i;
      }
      if (sp.type === PieceType.NORMAL) {
        minScore = Math.min(minScore, this.scores[i]);
        maxScore = Math.max(maxScore, this.scores[i]);
      }
    }
    if (unk < 0) throw new Error("SentencePiece model: unk is not defined");
    if (this.byteFallback && this.byteIds.some((v) => v < 0)) {
      throw new Error("SentencePiece model: byte_fallback is set but not all 256 byte pieces exist");
    }
    this.unkId = unk;
    this.trie = new PieceTrie(trieKeys);
    this.minScore = minScore;
    this.maxScore = maxScore;
    this.unkSurface = proto.trainerSpec.unkSurface ?? DEFAULT_UNK_SURFACE;
    const matcher = this.matcher = new PrefixMatcher(userDefined);
    this.normalizer = new Normalizer(
      proto.normalizerSpec,
      matcher,
      proto.trainerSpec.treatWhitespaceAsSuffix,
    );
    const den = proto.denormalizerSpec;
    if (den && den.precompiledCharsmap.length > 0) this.denormalizer = new Normalizer(den);
  }

  static fromBytes(bytes: Uint8Array): SentencePieceProcessor {
    return new SentencePieceProcessor(decodeModelProto(bytes));
  }

  /** Number of pieces (GetPieceSize / vocab_size). */
  get size(): number {
    return this.pieces.length;
  }

  pieceToId(piece: string): number {
    return this.reservedIds.get(piece) ?? this.pieceIds.get(piece) ?? this.unkId;
  }

  idToPiece(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new RangeError(`SentencePiece: piece id ${id} is out of range [0, ${this.pieces.length})`);
    }
    return this.pieces[id].piece;
  }

  isUnknown(id: number): boolean {
    return this.types[id] === PieceType.UNKNOWN;
  }
  isControl(id: number): boolean {
    return this.types[id] === PieceType.CONTROL;
  }

  /** The normalized UTF-8 bytes the model sees. */
  normalize(text: string): Uint8Array {
    return this.normalizer.normalizeText(text).slice();
  }

  /** Text → pieces with ids (EncodeAsPieces / EncodeAsIds are the two projections of this). */
  encode(text: string): EncodedPiece[] {
    const s = this.normalizer.normalizeText(text);
    if (s.length === 0) return [];
    const spans = this.modelType === ModelType.UNIGRAM ? this.encodeUnigram(s) : this.encodeBpe(s);
    // PopulateSentencePieceText: unknown runs merge into one piece (or become byte pieces with byte_fallback).
    // A known piece's text is the vocabulary entry itself; only unknown runs are cut from the normalized bytes.
    const out: EncodedPiece[] = [];
    let prevUnk = false, runStart = 0;
    for (const sp of spans) {
      const unk = this.types[sp.id] === PieceType.UNKNOWN;
      if (unk && this.byteFallback) {
        for (let i = sp.start; i < sp.end; i++) {
          const id = this.byteIds[s[i]];
          out.push({ id, piece: this.pieces[id].piece });
        }
      } else if (prevUnk && unk) {
        out[out.length - 1].piece = decoder.decode(s.subarray(runStart, sp.end));
      } else if (unk) {
        runStart = sp.start;
        out.push({ id: sp.id, piece: decoder.decode(s.subarray(sp.start, sp.end)) });
      } else {
        out.push({ id: sp.id, piece: this.pieces[sp.id].piece });
      }
      prevUnk = unk;
    }
    return out;
  }

  /** EncodeAsIds: the ids of `encode` without building piece strings. */
  encodeIds(text: string): number[] {
    const s = this.normalizer.normalizeText(text);
    if (s.length === 0) return [];
    const spans = this.modelType === ModelType.UNIGRAM ? this.encodeUnigram(s) : this.encodeBpe(s);
    const out: number[] = [];
    let prevUnk = false;
    for (const sp of spans) {
      const unk = this.types[sp.id] === PieceType.UNKNOWN;
      if (unk && this.byteFallback) { for (let i = sp.start; i < sp.end; i++) out.push(this.byteIds[s[i]]); }
      else if (!(prevUnk && unk)) out.push(sp.id);
      prevUnk = unk;
    }
    return out;
  }

  encodePieces(text: string): string[] {
    return this.encode(text).map((p) => p.piece);
  }

  // Viterbi scratch (best path score, start and id of the last piece per end position), grown as needed.
  private vScore = new Float32Array(256);
  private vFrom = new Int32Array(256);
  private vIds = new Int32Array(256);

  /** Unigram Model::EncodeOptimized: Viterbi over UTF-8 byte positions with float32 path scores. */
  private encodeUnigram(s: Uint8Array): Span[] {
    const size = s.length;
    if (this.vScore.length < size + 1) {
      const cap = Math.max(2 * this.vScore.length, size + 1);
      this.vScore = new Float32Array(cap);
      this.vFrom = new Int32Array(cap);
      this.vIds = new Int32Array(cap);
    }
    const score = this.vScore, from = this.vFrom, ids = this.vIds;
    score.fill(0, 0, size + 1);
    from.fill(-1, 0, size + 1);
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    const { trie, types, scores } = this;
    const maxScore = this.maxScore;
    let start = 0;
    while (start < size) {
      const base = score[start];
      const mblen = Math.min(oneCharLen(s[start]), size - start);
      let hasSingle = false;
      let node = 0;
      for (let key = start; key < size;) {
        node = trie.step(node, s[key++]);
        if (node < 0) break;
        const id = trie.value(node);
        if (id < 0) continue;
        const type = types[id];
        if (type === PieceType.UNUSED) continue;
        const length = key - start;
        // In C++ the score is a double (the ternary mixes double and float); the sum is compared as a double
        // against the stored float and then stored as a float.
        const sc = type === PieceType.USER_DEFINED ? Math.fround(length * maxScore) - 0.1 : scores[id];
        const cand = sc + base;
        if (from[key] === -1 || cand > score[key]) {
          score[key] = cand;
          from[key] = start;
          ids[key] = id;
        }
        if (length === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const t = start + mblen;
        const cand = Math.fround(unkScore + base);
        if (from[t] === -1 || cand > score[t]) {
          score[t] = cand;
          from[t] = start;
          ids[t] = this.unkId;
        }
      }
      start += mblen;
    }
    const spans: Span[] = [];
    for (let end = size; end > 0;) {
      const st = from[end];
      spans.push({ start: st, end, id: ids[end] });
      end = st;
    }
    return spans.reverse();
  }

  /** BPE Model::SampleEncode with alpha 0: merge the best-scored adjacent pair (leftmost on ties) until none. */
  private encodeBpe(s: Uint8Array): Span[] {
    const starts: number[] = [], ends: number[] = [], prev: number[] = [], next: number[] = [];
    const freeze: boolean[] = [];
    const matcher = this.matcher;
    for (let pos = 0, i = 0; pos < s.length; i++) {
      const m = matcher.match(s, pos, s.length);
      const len = m > 0 ? m : Math.min(s.length - pos, oneCharLen(s[pos]));
      starts.push(pos);
      ends.push(pos + len);
      freeze.push(m > 0);
      prev.push(i - 1);
      pos += len;
      next.push(pos < s.length ? i + 1 : -1);
    }
    // Agenda: a binary max-heap of (score, left) with the smallest left first on equal scores.
    type Pair = { left: number; right: number; score: number; size: number };
    const heap: Pair[] = [];
    const better = (a: Pair, b: Pair) => a.score > b.score || (a.score === b.score && a.left < b.left);
    const push = (p: Pair) => {
      heap.push(p);
      let i = heap.length - 1;
      while (i > 0) {
        const par = (i - 1) >> 1;
        if (!better(heap[i], heap[par])) break;
        [heap[i], heap[par]] = [heap[par], heap[i]];
        i = par;
      }
    };
    const pop = (): Pair => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let b = i;
          if (l < heap.length && better(heap[l], heap[b])) b = l;
          if (r < heap.length && better(heap[r], heap[b])) b = r;
          if (b === i) break;
          [heap[i], heap[b]] = [heap[b], heap[i]];
          i = b;
        }
      }
      return top;
    };
    const revMerge = new Map<string, [number, number, number, number]>();
    const maybeAdd = (left: number, right: number) => {
      if (left === -1 || right === -1 || freeze[left] || freeze[right]) return;
      const st = starts[left], en = ends[right];
      const id = this.trie.lookup(s, st, en);
      if (id < 0) return;
      push({ left, right, score: this.scores[id], size: en - st });
      if (this.types[id] === PieceType.UNUSED) {
        revMerge.set(`${st}:${en}`, [starts[left], ends[left], starts[right], ends[right]]);
      }
    };
    for (let i = 1; i < starts.length; i++) maybeAdd(i - 1, i);
    while (heap.length > 0) {
      const top = pop();
      const L = top.left, R = top.right;
      const lsz = ends[L] - starts[L], rsz = ends[R] - starts[R];
      if (lsz === 0 || rsz === 0 || lsz + rsz !== top.size) continue;
      ends[L] = ends[R];
      next[L] = next[R];
      if (next[R] >= 0) prev[next[R]] = L;
      ends[R] = starts[R]; // empty
      maybeAdd(prev[L], L);
      maybeAdd(L, next[L]);
    }
    const spans: Span[] = [];
    const resegment = (st: number, en: number) => {
      const found = this.trie.lookup(s, st, en);
      const id = found < 0 ? this.unkId : found;
      if (this.types[id] !== PieceType.UNUSED) {
        spans.push({ start: st, end: en, id });
        return;
      }
      const r = revMerge.get(`${st}:${en}`);
      if (!r) {
        spans.push({ start: st, end: en, id });
        return;
      }
      resegment(r[0], r[1]);
      resegment(r[2], r[3]);
    };
    if (starts.length > 0) { for (let i = 0; i !== -1; i = next[i]) resegment(starts[i], ends[i]); }
    return spans;
  }

  /** Ids → text as SentencePieceProcessor::Decode (control pieces vanish, <unk> → " ⁇ ", first ▁ dropped). */
  decodeIds(ids: ArrayLike<number>): string {
    const pieces: string[] = [];
    for (let i = 0; i < ids.length; i++) pieces.push(this.idToPiece(ids[i]));
    return this.decodePieces(pieces);
  }

  decodePieces(pieces: string[]): string {
    const spec = this.proto.normalizerSpec;
    let text = "";
    let isBosWs = true, bosWsSeen = false;
    let bytes: number[] = [];
    const flushBytes = () => {
      if (bytes.length === 0) return;
      // ProcessBytePieces: valid UTF-8 sequences decode; every byte of a malformed one is its own U+FFFD.
      const b = new Uint8Array(bytes);
      for (let i = 0; i < b.length;) {
        const n = validCharLen(b, i, b.length);
        if (n === 0) {
          text += "\ufffd";
          i++;
        } else {
          text += decoder.decode(b.subarray(i, i + n));
          i += n;
        }
      }
      bytes = [];
    };
    for (const piece of pieces) {
      const id = this.pieceToId(piece);
      if (this.types[id] === PieceType.BYTE) {
        bytes.push(parseInt(piece.slice(3, 5), 16));
        continue;
      }
      flushBytes();
      if (bosWsSeen || text.length > 0) isBosWs = false;
      let decoded: string;
      bosWsSeen = false;
      if (this.isControl(id)) decoded = "";
      else if (this.isUnknown(id)) decoded = this.pieces[id].piece === piece ? this.unkSurface : piece;
      else {
        let p = piece;
        if (isBosWs && (spec.addDummyPrefix || spec.removeExtraWhitespaces)) {
          if (p.startsWith(SPACE_SYMBOL)) {
            p = p.slice(SPACE_SYMBOL.length);
            bosWsSeen = !spec.removeExtraWhitespaces;
          }
        }
        decoded = p.replaceAll(SPACE_SYMBOL, " ");
      }
      text += decoded;
    }
    flushBytes();
    if (this.denormalizer) text = decoder.decode(this.denormalizer.normalize(encoder.encode(text)));
    return text;
  }
}
