#!/usr/bin/env python3
"""Derives the T5-like SentencePiece test models from sentencepiece's own test model.

Run once (already done; the outputs are committed next to the tests). Pure Python, no protobuf package:
ModelProto is rewritten field by field.

  python3 make_test_models.py <sentencepiece_test_model.model> <nmt_nfkc.bin> <out dir>

Inputs:
  sentencepiece_test_model.model  google/sentencepiece python/test/test_model.model (Apache-2.0): a 1000-piece
                                  UNIGRAM model trained on botchan.txt with the plain "nfkc" normalizer.
  nmt_nfkc.bin                    huggingface/spm_precompiled src/nmt_nfkc.bin (Apache-2.0): sentencepiece's
                                  compiled nmt_nfkc charsmap, the normalizer T5's spiece.model uses.
Outputs:
  t5like_nmt.model                same pieces, normalizer nmt_nfkc (as T5)
  t5like_nmt_bytefallback.model   same plus 256 byte pieces <0x00>..<0xFF> (ids 1000..1255) and byte_fallback
"""
import sys


def read_varint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def fields(b):
    """Yields (field number, wire type, raw bytes of the whole field, payload)."""
    i = 0
    while i < len(b):
        start = i
        tag, i = read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
            payload = v
        elif wt == 1:
            payload = b[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = read_varint(b, i)
            payload = b[i:i + n]
            i += n
        elif wt == 5:
            payload = b[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, b[start:i], payload


def ld(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vi(num, value):
    return varint(num << 3 | 0) + varint(value)


def derive(model, charsmap, byte_fallback):
    out = bytearray()
    for num, wt, raw, payload in fields(model):
        if num == 1:
            out += raw
        elif num == 2:
            trainer = bytearray(raw[len(varint(2 << 3 | 2)) + len(varint(len(payload))):])
            if byte_fallback:
                trainer += vi(35, 1)
            pending_trainer = bytes(trainer)
            if byte_fallback:
                for b in range(256):
                    piece = ld(1, ("<0x%02X>" % b).encode()) + varint(2 << 3 | 5) + b"\0\0\0\0" + vi(3, 6)
                    out += ld(1, piece)
            out += ld(2, pending_trainer)
        elif num == 3:
            kept = bytearray()
            for n2, w2, raw2, p2 in fields(payload):
                if n2 not in (1, 2):
                    kept += raw2
            out += ld(3, ld(1, b"nmt_nfkc") + ld(2, charsmap) + bytes(kept))
        else:
            out += raw
    return bytes(out)


def main():
    model = open(sys.argv[1], "rb").read()
    charsmap = open(sys.argv[2], "rb").read()
    out_dir = sys.argv[3]
    # Pieces (field 1) precede trainer_spec (field 2) in the file, so byte pieces are appended after the
    # last original piece and get ids 1000..1255.
    open(out_dir + "/t5like_nmt.model", "wb").write(derive(model, charsmap, False))
    open(out_dir + "/t5like_nmt_bytefallback.model", "wb").write(derive(model, charsmap, True))


if __name__ == "__main__":
    main()
