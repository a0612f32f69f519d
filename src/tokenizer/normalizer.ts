// SentencePiece's normalizer: the precompiled charsmap (a darts-clone double-array trie over UTF-8 bytes plus a
// blob of NUL-terminated replacement strings), user-defined symbols passed through untouched, whitespace handling.
// Works on UTF-8 bytes like the original; not a Unicode NFKC implementation (the rules come from the model file).

import type { NormalizerSpec } from "./protobuf.ts";

const SPACE_SYMBOL = new Uint8Array([0xe2, 0x96, 0x81]); // U+2581
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

/** A read-only darts-clone double array (32-bit units, little-endian). */
export class DoubleArray {
  constructor(readonly units: Uint32Array) {}

  /** Longest key that is a prefix of s[pos..end): [length, value], or [0, 0] if none. */
  longestPrefix(s: Uint8Array, pos: number, end: number): [number, number] {
    const a = this.units;
    let unit = a[0];
    let node = (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let bestLen = 0, bestValue = 0;
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
        bestValue = a[node] & 0x7fffffff;
      }
    }
    return [bestLen, bestValue];
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
  /** Cached replacement strings by blob offset. */
  private readonly replacements = new Map<number, Uint8Array>();

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
    }
  }

  private replacement(offset: number): Uint8Array {
    let r = this.replacements.get(offset);
    if (!r) {
      let e = offset;
      while (e < this.blob.length && this.blob[e] !== 0) e++;
      r = this.blob.subarray(offset, e);
      this.replacements.set(offset, r);
    }
    return r;
  }

  /**
   * Normalizes the prefix of s[pos..end): [replacement bytes, bytes consumed]. User-defined symbols come back as
   * they are; then the longest charsmap rule; else one UTF-8 character (a malformed byte becomes U+FFFD).
   */
  normalizePrefix(s: Uint8Array, pos: number, end: number): [Uint8Array, number] {
    if (this.matcher) {
      const m = this.matcher.match(s, pos, end);
      if (m > 0) return [s.subarray(pos, pos + m), m];
    }
    if (this.trie) {
      const [len, value] = this.trie.longestPrefix(s, pos, end);
      if (len > 0) return [this.replacement(value), len];
    }
    const n = validCharLen(s, pos, end);
    if (n === 0) return [REPLACEMENT, 1];
    return [s.subarray(pos, pos + n), n];
  }

  /** Normalizes UTF-8 bytes as Normalizer::Normalize does (without the norm→orig alignment). */
  normalize(input: Uint8Array): Uint8Array {
    const spec = this.spec;
    let pos = 0;
    const end = input.length;
    if (end === 0) return new Uint8Array(0);
    if (spec.removeExtraWhitespaces) {
      while (pos < end) {
        const [sp, n] = this.normalizePrefix(input, pos, end);
        if (!(sp.length === 1 && sp[0] === 0x20)) break;
        pos += n;
      }
    }
    if (pos >= end) return new Uint8Array(0);

    let out = new Uint8Array(Math.max(16, (end - pos) * 3 + 3));
    let len = 0;
    const push = (b: number) => {
      if (len === out.length) {
        const bigger = new Uint8Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[len++] = b;
    };
    const addWs = () => {
      if (spec.escapeWhitespaces) { for (const b of SPACE_SYMBOL) push(b); }
      else push(0x20);
    };

    if (!this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();

    let isPrevSpace = spec.removeExtraWhitespaces;
    while (pos < end) {
      const [sp, n] = this.normalizePrefix(input, pos, end);
      let i = 0;
      if (isPrevSpace) { while (i < sp.length && sp[i] === 0x20) i++; }
      if (i < sp.length) {
        for (; i < sp.length; i++) {
          if (spec.escapeWhitespaces && sp[i] === 0x20) { for (const b of SPACE_SYMBOL) push(b); }
          else push(sp[i]);
        }
        isPrevSpace = sp[sp.length - 1] === 0x20;
      }
      pos += n;
      if (!spec.removeExtraWhitespaces) isPrevSpace = false;
    }

    if (spec.removeExtraWhitespaces) {
      if (spec.escapeWhitespaces) {
        while (len >= 3 && out[len - 3] === 0xe2 && out[len - 2] === 0x96 && out[len - 1] === 0x81) len -= 3;
      } else {
        while (len >= 1 && out[len - 1] === 0x20) len--;
      }
    }

    if (this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
    return out.slice(0, len);
  }
}
