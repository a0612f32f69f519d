// SentencePiece's normalizer: the precompiled charsmap (a darts-clone double-array trie over UTF-8 bytes plus a
// blob of NUL-terminated replacement strings), user-defined symbols passed through untouched, whitespace handling.
// Works on UTF-8 bytes like the original; not a Unicode NFKC implementation (the rules come from the model file).

import type { NormalizerSpec } from "./protobuf.ts";

const REPLACEMENT = new Uint8Array([0xef, 0xbf, 0xbd]); // U+FFFD

/** Byte length of the UTF-8 sequence starting with `b` (sentencepiece's OneCharLen table). */
export function oneCharLen(b: number): number {
  const hi = b >> 4;
  return hi < 12 ? 1 : hi < 14 ? 2 : hi === 14 ? 3 : 4;
}

/** Length of the valid UTF-8 character at `pos`, or 0 if it is malformed (then it counts as one byte of U+FFFD). */
export function validCharLen(s: Uint8Array, pos: number, end: number): number {
  const b = s[pos];
  if (b < 0x80) return 1;
  const cont = (i: number) => i < end && (s[i] & 0xc0) === 0x80;
  if (b >= 0xc2 && b <= 0xdf) return cont(pos + 1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    if (!cont(pos + 1) || !cont(pos + 2)) return 0;
    const cp = ((b & 0x0f) << 12) | ((s[pos + 1] & 0x3f) << 6) | (s[pos + 2] & 0x3f);
    if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!cont(pos + 1) || !cont(pos + 2) || !cont(pos + 3)) return 0;
    const cp = ((b & 0x07) << 18) | ((s[pos + 1] & 0x3f) << 12) | ((s[pos + 2] & 0x3f) << 6) |
      (s[pos + 3] & 0x3f);
    if (cp < 0x10000 || cp > 0x10ffff) return 0;
    return 4;
  }
  return 0;
}

/**
 * UTF-8 encodes `text` into `buf` (which must hold text.length * 3 bytes); returns the byte count. Lone surrogates
 * become U+FFFD, as TextEncoder does; no allocation, which matters for many short strings.
 */
export function encodeUtf8Into(text: string, buf: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) buf[n++] = c;
    else if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          buf[n++] = 0xf0 | (c >> 18);
          buf[n++] = 0x80 | ((c >> 12) & 0x3f);
          buf[n++] = 0x80 | ((c >> 6) & 0x3f);
          buf[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      buf[n++] = 0xe0 | (c >> 12);
      buf[n++] = 0x80 | ((c >> 6) & 0x3f);
      buf[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

/** A read-only darts-clone double array (32-bit units, little-endian). */
export class DoubleArray {
  constructor(readonly units: Uint32Array) {}

  /** Value of the key found by the last successful `longestPrefix`. */
  value = 0;

  /** Length of the longest key that is a prefix of s[pos..end) (0 if none); its value is left in `value`. */
  longestPrefix(s: Uint8Array, pos: number, end: number): number {
    const a = this.units;
    let unit = a[0];
    let node = (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let bestLen = 0;
    for (let i = pos; i < end; i++) {
      const c = s[i];
      node ^= c;
      if (node >= a.length) break;
      unit = a[node];
      // label(): unit & (0x80000000 | 0xFF); leaves have the MSB set and never match.
      if ((unit & 0x800000ff) >>> 0 !== c) break;
      node ^= (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
      if ((unit >>> 8) & 1) {
        bestLen = i + 1 - pos;
        this.value = a[node] & 0x7fffffff;
      }
    }
    return bestLen;
  }
}

/** A byte trie over a set of strings: longest-prefix matching (sentencepiece's PrefixMatcher). */
export class PrefixMatcher {
  private readonly children: Map<number, number>[] = [new Map()];
  private readonly terminal: boolean[] = [false];
  readonly empty: boolean;

  constructor(keys: Iterable<Uint8Array>) {
    let n = 0;
    for (const k of keys) {
      n++;
      let node = 0;
      for (const b of k) {
        let next = this.children[node].get(b);
        if (next === undefined) {
          next = this.children.length;
          this.children.push(new Map());
          this.terminal.push(false);
          this.children[node].set(b, next);
        }
        node = next;
      }
      this.terminal[node] = true;
    }
    this.empty = n === 0;
  }

  /** Length of the longest key at s[pos..end), 0 if none. */
  match(s: Uint8Array, pos: number, end: number): number {
    if (this.empty) return 0;
    let node = 0, best = 0;
    for (let i = pos; i < end; i++) {
      const next = this.children[node].get(s[i]);
      if (next === undefined) break;
      node = next;
      if (this.terminal[node]) best = i + 1 - pos;
    }
    return best;
  }
}

export class Normalizer {
  private readonly trie: DoubleArray | null = null;
  private readonly blob: Uint8Array = new Uint8Array(0);
  /** End (exclusive) of the NUL-terminated replacement starting at each blob offset, filled lazily (0 = unknown). */
  private readonly replacementEnd: Int32Array = new Int32Array(0);

  // Result of normalizePrefix: bytes src[start..end) replace `consumed` input bytes.
  private src: Uint8Array = REPLACEMENT;
  private start = 0;
  private end = 0;

  constructor(
    readonly spec: NormalizerSpec,
    private readonly matcher: PrefixMatcher | null = null,
    private readonly treatWhitespaceAsSuffix = false,
  ) {
    const index = spec.precompiledCharsmap;
    if (index.length > 0) {
      if (index.length <= 4) throw new Error("Normalizer: precompiled charsmap blob is broken");
      const dv = new DataView(index.buffer, index.byteOffset, index.byteLength);
      const trieSize = dv.getUint32(0, true);
      if (trieSize >= index.length || trieSize % 4 !== 0) {
        throw new Error(
          `Normalizer: charsmap trie size ${trieSize} does not fit the ${index.length}-byte blob`,
        );
      }
      const units = new Uint32Array(trieSize / 4);
      for (let i = 0; i < units.length; i++) units[i] = dv.getUint32(4 + 4 * i, true);
      this.trie = new DoubleArray(units);
      this.blob = index.subarray(4 + trieSize);
      this.replacementEnd = new Int32Array(this.blob.length + 1);
    }
  }

  /**
   * Normalizes the prefix of s[pos..end); returns the number of input bytes consumed and leaves the replacement
   * in this.src[this.start..this.end). User-defined symbols come back as they are; then the longest charsmap rule;
   * else one UTF-8 character (a malformed byte becomes U+FFFD).
   */
  private prefix(s: Uint8Array, pos: number, end: number): number {
    if (this.matcher) {
      const m = this.matcher.match(s, pos, end);
      if (m > 0) {
        this.src = s;
        this.start = pos;
        this.end = pos + m;
        return m;
      }
    }
    const trie = this.trie;
    if (trie) {
      const len = trie.longestPrefix(s, pos, end);
      if (len > 0) {
        const off = trie.value;
        let e = this.replacementEnd[off];
        if (e === 0) {
          e = off;
          while (e < this.blob.length && this.blob[e] !== 0) e++;
          this.replacementEnd[off] = e;
        }
        this.src = this.blob;
        this.start = off;
        this.end = e;
        return len;
      }
    }
    const n = validCharLen(s, pos, end);
    if (n === 0) {
      this.src = REPLACEMENT;
      this.start = 0;
      this.end = 3;
      return 1;
    }
    this.src = s;
    this.start = pos;
    this.end = pos + n;
    return n;
  }

  /** [replacement bytes, bytes consumed] for the prefix of s[pos..end) (see `normalize`). */
  normalizePrefix(s: Uint8Array, pos: number, end: number): [Uint8Array, number] {
    const n = this.prefix(s, pos, end);
    return [this.src.subarray(this.start, this.end), n];
  }

  /** Normalizes UTF-8 bytes as Normalizer::Normalize does (without the norm→orig alignment); a fresh array. */
  normalize(input: Uint8Array): Uint8Array {
    const len = this.run(input, input.length); // first: run() may replace outBuf
    return this.outBuf.slice(0, len);
  }

  /**
   * Normalizes a JS string; the result is a view of an internal buffer, valid until the next call on this
   * normalizer (the encoder's hot path: no allocation per call once the buffers have grown).
   */
  normalizeText(text: string): Uint8Array {
    if (this.inBuf.length < text.length * 3) this.inBuf = new Uint8Array(text.length * 3 + 64);
    const buf = this.inBuf;
    const n = encodeUtf8Into(text, buf);
    const len = this.run(buf, n); // first: run() may replace outBuf
    return this.outBuf.subarray(0, len);
  }

  private inBuf = new Uint8Array(256);
  private outBuf = new Uint8Array(256);

  /** The normalization itself: input[0..end) → this.outBuf[0..returned length). */
  private run(input: Uint8Array, end: number): number {
    const spec = this.spec;
    const escape = spec.escapeWhitespaces, removeExtra = spec.removeExtraWhitespaces;
    let pos = 0;
    if (end === 0) return 0;
    if (removeExtra) {
      while (pos < end) {
        const n = this.prefix(input, pos, end);
        if (!(this.end - this.start === 1 && this.src[this.start] === 0x20)) break;
        pos += n;
      }
    }
    if (pos >= end) return 0;

    if (this.outBuf.length < (end - pos) * 3 + 16) this.outBuf = new Uint8Array((end - pos) * 3 + 64);
    let out = this.outBuf;
    let len = 0;
    const reserve = (extra: number) => {
      if (len + extra <= out.length) return;
      const bigger = new Uint8Array(Math.max(out.length * 2, len + extra));
      bigger.set(out.subarray(0, len));
      out = this.outBuf = bigger;
    };
    const addWs = () => {
      reserve(3);
      if (escape) {
        out[len++] = 0xe2;
        out[len++] = 0x96;
        out[len++] = 0x81;
      } else out[len++] = 0x20;
    };

    if (!this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();

    let isPrevSpace = removeExtra;
    while (pos < end) {
      const n = this.prefix(input, pos, end);
      const src = this.src, e = this.end;
      let i = this.start;
      if (isPrevSpace) { while (i < e && src[i] === 0x20) i++; }
      if (i < e) {
        reserve(3 * (e - i));
        for (; i < e; i++) {
          const b = src[i];
          if (escape && b === 0x20) {
            out[len++] = 0xe2;
            out[len++] = 0x96;
            out[len++] = 0x81;
          } else out[len++] = b;
        }
        isPrevSpace = src[e - 1] === 0x20;
      }
      pos += n;
      if (!removeExtra) isPrevSpace = false;
    }

    if (removeExtra) {
      if (escape) {
        while (len >= 3 && out[len - 3] === 0xe2 && out[len - 2] === 0x96 && out[len - 1] === 0x81) len -= 3;
      } else {
        while (len >= 1 && out[len - 1] === 0x20) len--;
      }
    }

    if (this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
    return len;
  }
}
