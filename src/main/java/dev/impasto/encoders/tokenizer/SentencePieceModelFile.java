package dev.impasto.encoders.tokenizer;

import dev.impasto.encoders.tokenizer.ProtoReader.MalformedProtoException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a SentencePiece {@code ModelProto} (the {@code .model} / {@code spiece.model} file) that encoding
 * needs. Field numbers and defaults are those of sentencepiece_model.proto; fields impasto does not use are skipped.
 */
final class SentencePieceModelFile {
    /** {@code ModelProto.SentencePiece.Type} values. */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;
    /** {@code TrainerSpec.ModelType} values. */
    static final int UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4;

    final String[] pieces;
    final float[] scores;
    final int[] types;

    int modelType = UNIGRAM;
    int unkId = 0, bosId = 1, eosId = 2, padId = -1;
    boolean byteFallback = false;
    boolean treatWhitespaceAsSuffix = false;

    String normalizerName = "";
    byte[] precompiledCharsmap = new byte[0];
    boolean addDummyPrefix = true;
    boolean removeExtraWhitespaces = true;
    boolean escapeWhitespaces = true;

    private SentencePieceModelFile(List<String> pieces, List<Float> scores, List<Integer> types) {
        int n = pieces.size();
        this.pieces = pieces.toArray(new String[0]);
        this.scores = new float[n];
        this.types = new int[n];
        for (int i = 0; i < n; i++) {
            this.scores[i] = scores.get(i);
            this.types[i] = types.get(i);
        }
    }

    int size() {
        return pieces.length;
    }

    static SentencePieceModelFile read(Path path) throws TokenizerFileException {
        byte[] data;
        try {
            data = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new TokenizerFileException(path, "cannot read the SentencePiece model (" + e + ")", e);
        }
        return parse(data, path);
    }

    static SentencePieceModelFile parse(byte[] data, Path source) throws TokenizerFileException {
        try {
            return parse(data);
        } catch (MalformedProtoException e) {
            throw new TokenizerFileException(source, "not a SentencePiece model file (ModelProto protobuf): " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new TokenizerFileException(source, "invalid SentencePiece model: " + e.getMessage(), e);
        }
    }

    private static SentencePieceModelFile parse(byte[] data) throws MalformedProtoException {
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        ProtoReader trainer = null, normalizer = null;
        ProtoReader r = new ProtoReader(data);
        while (r.hasMore()) {
            int tag = r.readTag();
            int field = tag >>> 3, wire = tag & 7;
            if (field == 1 && wire == ProtoReader.LENGTH_DELIMITED) {
                ProtoReader p = r.readMessage();
                String piece = null;
                float score = 0f;
                int type = NORMAL;
                while (p.hasMore()) {
                    int t = p.readTag();
                    int f = t >>> 3, w = t & 7;
                    if (f == 1 && w == ProtoReader.LENGTH_DELIMITED) piece = p.readString();
                    else if (f == 2 && w == ProtoReader.FIXED32) score = p.readFloat();
                    else if (f == 3 && w == ProtoReader.VARINT) type = (int) p.readVarint();
                    else p.skip(w);
                }
                if (piece == null || piece.isEmpty()) {
                    throw new IllegalArgumentException("piece " + pieces.size() + " has no text");
                }
                if (type < NORMAL || type > BYTE) throw new IllegalArgumentException("piece " + pieces.size() + " has unknown type " + type);
                pieces.add(piece);
                scores.add(score);
                types.add(type);
            } else if (field == 2 && wire == ProtoReader.LENGTH_DELIMITED) {
                trainer = r.readMessage();
            } else if (field == 3 && wire == ProtoReader.LENGTH_DELIMITED) {
                normalizer = r.readMessage();
            } else {
                r.skip(wire);
            }
        }
        if (pieces.isEmpty()) throw new MalformedProtoException("no pieces (field 1 of ModelProto) found");
        SentencePieceModelFile m = new SentencePieceModelFile(pieces, scores, types);
        if (trainer != null) {
            while (trainer.hasMore()) {
                int t = trainer.readTag();
                int f = t >>> 3, w = t & 7;
                if (w != ProtoReader.VARINT) {
                    trainer.skip(w);
                    continue;
                }
                long v = trainer.readVarint();
                switch (f) {
                    case 3 -> m.modelType = (int) v;
                    case 24 -> m.treatWhitespaceAsSuffix = v != 0;
                    case 35 -> m.byteFallback = v != 0;
                    case 40 -> m.unkId = (int) v;
                    case 41 -> m.bosId = (int) v;
                    case 42 -> m.eosId = (int) v;
                    case 43 -> m.padId = (int) v;
                    default -> { }
                }
            }
        }
        if (normalizer != null) {
            while (normalizer.hasMore()) {
                int t = normalizer.readTag();
                int f = t >>> 3, w = t & 7;
                if (f == 1 && w == ProtoReader.LENGTH_DELIMITED) m.normalizerName = normalizer.readString();
                else if (f == 2 && w == ProtoReader.LENGTH_DELIMITED) m.precompiledCharsmap = normalizer.readBytes();
                else if (f == 3 && w == ProtoReader.VARINT) m.addDummyPrefix = normalizer.readVarint() != 0;
                else if (f == 4 && w == ProtoReader.VARINT) m.removeExtraWhitespaces = normalizer.readVarint() != 0;
                else if (f == 5 && w == ProtoReader.VARINT) m.escapeWhitespaces = normalizer.readVarint() != 0;
                else normalizer.skip(w);
            }
        }
        return m;
    }
}
