// Just enough protobuf (proto2 wire format) to read a SentencePiece ModelProto: pieces, trainer spec, normalizer spec.
// Not a general protobuf library: unknown fields are skipped, nothing is ever written.

/** Piece types of sentencepiece_model.proto (ModelProto.SentencePiece.Type). */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** TrainerSpec.ModelType. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePiece {
  piece: string;
  /** float32 score (as stored). */
  score: number;
  type: number;
}

export interface TrainerSpec {
  /** ModelType value; 1 (UNIGRAM) when absent. */
  modelType: number;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  /** Null when the field is absent (the processor then uses " \u2047 "). */
  unkSurface: string | null;
}

export interface NormalizerSpec {
  name: string;
  /** Empty when absent. */
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface ModelProto {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** Null when absent. */
  denormalizerSpec: NormalizerSpec | null;
}

const utf8 = new TextDecoder("utf-8");

/** A cursor over protobuf wire data. */
export class ProtoReader {
  pos: number;
  readonly end: number;
  constructor(readonly buf: Uint8Array, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Unsigned varint as a JS number (exact up to 2^53). */
  varint(): number {
    let v = 0, mul = 1, b: number;
    do {
      if (this.pos >= this.end) throw new Error("Protobuf: truncated varint");
      b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return v;
  }

  /** Varint read as a signed 32-bit int (negative int32 values are sign-extended to 64 bits on the wire). */
  int32(): number {
    let lo = 0, shift = 0, b: number;
    do {
      if (this.pos >= this.end) throw new Error("Protobuf: truncated varint");
      b = this.buf[this.pos++];
      if (shift < 32) lo |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return lo | 0;
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw new Error("Protobuf: truncated fixed32");
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** Bytes of a length-delimited field (a view, not a copy). */
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error("Protobuf: length-delimited field runs past the end");
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  /** Reads a field key: [fieldNumber, wireType]. */
  key(): [number, number] {
    const k = this.varint();
    return [Math.floor(k / 8), k & 7];
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.bytes();
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`Protobuf: unsupported wire type ${wire} at byte ${this.pos}`);
    }
    if (this.pos > this.end) throw new Error("Protobuf: field runs past the end");
  }

  /** A reader over the next length-delimited field. */
  sub(): ProtoReader {
    const b = this.bytes();
    return new ProtoReader(
      this.buf,
      b.byteOffset - this.buf.byteOffset,
      b.byteOffset - this.buf.byteOffset + b.length,
    );
  }
}

function readPiece(r: ProtoReader): SentencePiece {
  const p: SentencePiece = { piece: "", score: 0, type: PieceType.NORMAL };
  while (!r.done()) {
    const [f, w] = r.key();
    if (f === 1 && w === 2) p.piece = r.string();
    else if (f === 2 && w === 5) p.score = r.float32();
    else if (f === 3 && w === 0) p.type = r.int32();
    else r.skip(w);
  }
  return p;
}

function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    allowWhitespaceOnlyPieces: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: "<unk>",
    bosPiece: "<s>",
    eosPiece: "</s>",
    padPiece: "<pad>",
    unkSurface: null,
  };
}

function readTrainerSpec(r: ProtoReader): TrainerSpec {
  const t = defaultTrainerSpec();
  while (!r.done()) {
    const [f, w] = r.key();
    if (w === 0) {
      const v = r.int32();
      if (f === 3) t.modelType = v;
      else if (f === 4) t.vocabSize = v;
      else if (f === 35) t.byteFallback = v !== 0;
      else if (f === 24) t.treatWhitespaceAsSuffix = v !== 0;
      else if (f === 26) t.allowWhitespaceOnlyPieces = v !== 0;
      else if (f === 40) t.unkId = v;
      else if (f === 41) t.bosId = v;
      else if (f === 42) t.eosId = v;
      else if (f === 43) t.padId = v;
    } else if (w === 2 && f >= 44 && f <= 48) {
      const s = r.string();
      if (f === 44) t.unkSurface = s;
      else if (f === 45) t.unkPiece = s;
      else if (f === 46) t.bosPiece = s;
      else if (f === 47) t.eosPiece = s;
      else t.padPiece = s;
    } else r.skip(w);
  }
  return t;
}

function readNormalizerSpec(r: ProtoReader): NormalizerSpec {
  const n: NormalizerSpec = {
    name: "",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  while (!r.done()) {
    const [f, w] = r.key();
    if (f === 1 && w === 2) n.name = r.string();
    else if (f === 2 && w === 2) n.precompiledCharsmap = r.bytes();
    else if (f === 3 && w === 0) n.addDummyPrefix = r.varint() !== 0;
    else if (f === 4 && w === 0) n.removeExtraWhitespaces = r.varint() !== 0;
    else if (f === 5 && w === 0) n.escapeWhitespaces = r.varint() !== 0;
    else r.skip(w);
  }
  return n;
}

/** Decodes a serialized SentencePiece ModelProto (the `.model` file). */
export function decodeModelProto(bytes: Uint8Array): ModelProto {
  const r = new ProtoReader(bytes);
  const pieces: SentencePiece[] = [];
  let trainerSpec: TrainerSpec | null = null;
  let normalizerSpec: NormalizerSpec | null = null;
  let denormalizerSpec: NormalizerSpec | null = null;
  while (!r.done()) {
    const [f, w] = r.key();
    if (w === 2 && f === 1) pieces.push(readPiece(r.sub()));
    else if (w === 2 && f === 2) trainerSpec = readTrainerSpec(r.sub());
    else if (w === 2 && f === 3) normalizerSpec = readNormalizerSpec(r.sub());
    else if (w === 2 && f === 5) denormalizerSpec = readNormalizerSpec(r.sub());
    else r.skip(w);
  }
  if (pieces.length === 0) throw new Error("SentencePiece model: no pieces (not a ModelProto file?)");
  return {
    pieces,
    trainerSpec: trainerSpec ?? defaultTrainerSpec(),
    normalizerSpec: normalizerSpec ?? readNormalizerSpec(new ProtoReader(new Uint8Array(0))),
    denormalizerSpec,
  };
}
