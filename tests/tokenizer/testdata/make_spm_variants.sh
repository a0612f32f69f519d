#!/bin/sh
# Regenerates the small SentencePiece models spm_*.model and their cases spm_variants_cases.jsonl with
# sentencepiece 0.1.97 (Debian bookworm: apt-get install sentencepiece python3-sentencepiece). They cover what
# the fixture's text models do not: byte_fallback (unigram and BPE), identity normalizer, add_dummy_prefix=false,
# remove_extra_whitespaces=false, treat_whitespace_as_suffix, control and several user-defined symbols, a custom
# unk_surface, and decoding random id lists (malformed UTF-8 from byte pieces). Not run by the tests.
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
/usr/bin/python3 - "$tmp/corpus.txt" <<'PY'
import json, sys
lines = []
for f in ['icetk_text.json', 'icetk_text_bpe.json']:
    d = json.load(open('../../testdata/cogview2-tiny/golden/' + f))
    lines += [r['text'].replace('\n', ' ') for r in d['expected']['encode'] if r['text'].strip()]
open(sys.argv[1], 'w').write('\n'.join(lines) + '\n')
PY
common="--input=$tmp/corpus.txt --character_coverage=0.98 --random_seed=7 --num_threads=1 --minloglevel=2"
spm_train $common --model_prefix=$tmp/spm_uni_bf --model_type=unigram --vocab_size=800 --byte_fallback=true \
  --normalization_rule_name=identity --user_defined_symbols='<n>' --treat_whitespace_as_suffix=true
spm_train $common --model_prefix=$tmp/spm_bpe_bf --model_type=bpe --vocab_size=800 --byte_fallback=true \
  --normalization_rule_name=identity --add_dummy_prefix=false --remove_extra_whitespaces=false \
  --user_defined_symbols='<n>,<x>'
spm_train $common --model_prefix=$tmp/spm_uni_ws --model_type=unigram --vocab_size=500 \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --control_symbols='<ctl>' \
  --user_defined_symbols='<n>,▁▁' --unk_surface='??'
cp $tmp/spm_uni_bf.model $tmp/spm_bpe_bf.model $tmp/spm_uni_ws.model .
rm -rf "$tmp"
/usr/bin/python3 - > spm_variants_cases.jsonl <<'PY'
import json, random, sentencepiece as spm
assert spm.__version__ == '0.1.97', spm.__version__
POOL = list(" \t\n\r\u3000\u00a0\u2581abcXYZ019,.!?<>_-/'\"") + ['ﬁ', '①', '½', 'Ａ', 'ｶ', 'é', '😀', '\u200b', '一',
        '只', '老', '虎', 'の', '가', '<n>', '<x>', '<ctl>', '▁▁', '\U0001d400', '  ', '   ']
for name, seed in [('spm_uni_bf.model', 1), ('spm_bpe_bf.model', 2), ('spm_uni_ws.model', 3)]:
    sp = spm.SentencePieceProcessor(model_file=name)
    n = sp.get_piece_size()
    vocab = [sp.id_to_piece(i).replace('\u2581', ' ') for i in range(n)]
    rng = random.Random(seed)
    def ch():
        lo, hi = rng.choice([(0x20, 0x2fff), (0x4e00, 0x9fff), (0x10000, 0x1ffff)])
        return chr(rng.randint(lo, hi))
    for i in range(100):
        k = rng.randint(0, 12) if i % 10 else rng.randint(40, 100)
        s = ''.join((rng.choice(POOL) if rng.random() < 0.5 else ch()) if rng.random() < 0.6 else rng.choice(vocab)
                    for _ in range(k))
        ids = sp.encode_as_ids(s)
        rec = {'model': name, 'text': s, 'ids': ids, 'pieces': sp.encode_as_pieces(s), 'decoded': sp.decode_ids(ids)}
        print(json.dumps(rec, ensure_ascii=False, separators=(',', ':')))
    for i in range(40):
        ids = [rng.randrange(n) for _ in range(rng.randint(0, 10))]
        rec = {'model': name, 'decode_ids': ids, 'decoded': sp.decode_ids(ids)}
        print(json.dumps(rec, ensure_ascii=False, separators=(',', ':')))
PY
