# Regenerates sp0197_cases.jsonl: random strings (fixture vocabulary fragments, odd whitespace, compatibility and
# combining characters, random code points) through sentencepiece 0.1.97 (Debian bookworm python3-sentencepiece,
# the version of the fixtures) on the fixture's two text models, with CogView2's three special tokens appended as
# icetk does. Not run by the tests; they only read the JSON.
#   /usr/bin/python3 tests/tokenizer/testdata/make_sp0197_cases.py > tests/tokenizer/testdata/sp0197_cases.jsonl
# One JSON record per line (JSON Lines, so the formatter leaves it alone): {model, text, ignore_linebreak, ids,
# tokenize, decoded}; ids include icetk's +20000 offset.
import json, random, sys, os
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ICETK = os.path.join(HERE, '..', '..', 'testdata', 'cogview2-tiny', 'icetk')
SPECIAL = ['<start_of_image>', '<start_of_english>', '<start_of_chinese>']

def piece_msg(tok):  # ModelProto.pieces entry {piece, score: 0}, appended to the serialized proto (proto2 merge)
    b = tok.encode()
    inner = bytes([0x0a, len(b)]) + b + bytes([0x15, 0, 0, 0, 0])
    return bytes([0x0a, len(inner)]) + inner

POOL = list(" \t\n\r\u3000\u00a0\u2581abcXYZ019,.!?<>_-/'\"") + [
    'ﬁ', '①', '™', '½', 'Ａ', 'ｂ', '１', 'ｶ', 'ﾞ', 'é', 'e\u0301', 'ñ', '😀', '\u200b', '\u2028', '\ufeff', '︰', '㍿',
    'ℌ', '²', '\u0301', '\u00ad', '\x00', '\x7f', '\u0085', '一', '只', '老', '虎', 'の', '가', 'Ω', 'ß', 'ǅ',
    '\u1e9b\u0323', '﹏', '〜', '\uff61', '\uffe5', '<n>', '<start_of_image>', '<start_of_chinese>', '\u2047', '\ufffd',
    '\U0001d400', '\u2126', '\u212b', '\u00c5', '\u0130']

def rand_char(rng):
    lo, hi = rng.choice([(0x20, 0x2fff), (0xa000, 0xd7ff), (0xf900, 0xfffd), (0x10000, 0x2ffff)])
    return chr(rng.randint(lo, hi))

out = {}
for name, seed in [('ice_text.model', 1), ('ice_text_bpe.model', 2)]:
    data = open(os.path.join(ICETK, name), 'rb').read() + b''.join(piece_msg(t) for t in SPECIAL)
    sp = spm.SentencePieceProcessor(model_proto=data)
    vocab = [sp.id_to_piece(i).replace('\u2581', ' ') for i in range(sp.get_piece_size())]
    rng = random.Random(seed)
    recs = []
    for i in range(200):
        k = rng.randint(0, 12) if i % 10 else rng.randint(40, 160)
        s = ''.join((rng.choice(POOL) if rng.random() < 0.5 else rand_char(rng)) if rng.random() < 0.6
                    else rng.choice(vocab) for _ in range(k))
        il = rng.random() < 0.7
        ids = sp.encode_as_ids(s if il else s.replace('\n', '<n>'))
        recs.append({'model': name, 'text': s, 'ignore_linebreak': il, 'ids': [x + 20000 for x in ids],
                     'tokenize': sp.encode_as_pieces(s), 'decoded': sp.decode_ids(ids).replace('<n>', '\n')})
    out[name] = recs
assert spm.__version__ == '0.1.97', spm.__version__
for recs in out.values():
    for r in recs:
        print(json.dumps(r, ensure_ascii=False, separators=(',', ':')))
