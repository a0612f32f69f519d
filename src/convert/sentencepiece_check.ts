// Validation of a SentencePiece model file (ModelProto protobuf) before it is copied into a model directory.
// Not a tokenizer: it walks the protobuf with bounds checks, counts the pieces and reads the model type.

const TYPES: Record<number, string> = { 1: "unigram", 2: "bpe", 3: "word", 4: "char" };

/** Throws naming `path` unless `bytes` parse as a ModelProto with at least one piece. */
export function validateSentencePiece(bytes: Uint8Array, path: string): { pieces: number; type: string } {
  let pieces = 0;
  let type = "unigram";
  const bad = (msg: string): never => {
    throw new Error(`${path}: not a SentencePiece model (${msg})`);
  };
  const walk = (
    start: number,
    end: number,
    onField: (field: number, wire: number, a: number, b: number) => void,
  ) => {
    let i = start;
    const varint = () => {
      let v = 0, mul = 1;
      for (let k = 0; k < 10; k++) {
        if (i >= end) bad(`truncated varint at byte ${i}`);
        const b = bytes[i++];
        v += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) return v;
      }
      return bad(`overlong varint at byte ${i}`);
    };
    while (i < end) {
      const key = varint();
      const field = Math.floor(key / 8), wire = key % 8;
      if (field === 0) bad(`field number 0 at byte ${i}`);
      if (wire === 0) onField(field, wire, varint(), 0);
      else if (wire === 2) {
        const len = varint();
        if (i + len > end) bad(`field ${field} of ${len} bytes runs past the end at byte ${i}`);
        onField(field, wire, i, i + len);
        i += len;
      } else if (wire === 5) {
        if (i + 4 > end) bad("truncated fixed32");
        i += 4;
      } else if (wire === 1) {
        if (i + 8 > end) bad("truncated fixed64");
        i += 8;
      } else bad(`unsupported wire type ${wire} at byte ${i}`);
    }
  };
  walk(0, bytes.length, (field, wire, a, b) => {
    if (field === 1) {
      if (wire !== 2) bad("piece is not a message");
      let hasPiece = false;
      walk(a, b, (f, w) => {
        if (f === 1 && w === 2) hasPiece = true;
      });
      if (!hasPiece) bad(`piece ${pieces} has no text`);
      pieces++;
    } else if (field === 2 && wire === 2) {
      walk(a, b, (f, w, v) => {
        if (f === 3 && w === 0) type = TYPES[v] ?? `type${v}`;
      });
    }
  });
  if (!pieces) bad("no pieces");
  return { pieces, type };
}
