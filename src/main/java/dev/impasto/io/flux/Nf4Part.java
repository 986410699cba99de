package dev.impasto.io.flux;

import dev.impasto.io.Shapes;
import dev.impasto.io.TensorEntry;
import dev.impasto.tensor.DType;

import java.util.Optional;

/**
 * One bitsandbytes-NF4 quantized weight as stored in a file (NF4 semantics: formats.md "NF4").
 *
 * @param key            the stored weight key ({@code <m>.weight})
 * @param packed         uint8, two 4-bit codes per byte (element 2j in the high nibble), {@code ceil(numel/2)} bytes
 * @param absmax         per-block scale: F32 [blocks], or U8 [blocks] when {@code state.nested()}
 * @param quantMap       F32 [16], the code book
 * @param nestedAbsmax   F32 [ceil(blocks / nestedBlocksize)] when nested
 * @param nestedQuantMap F32 [256] (signed dynamic map) when nested
 * @param state          the parsed quant_state JSON
 */
public record Nf4Part(String key, TensorEntry packed, TensorEntry absmax, TensorEntry quantMap, Optional<TensorEntry> nestedAbsmax,
                      Optional<TensorEntry> nestedQuantMap, BnbQuantState state) {

    /** The original weight shape (from the quant state). */
    public long[] shape() {
        return state.shape();
    }

    /** Checks every companion's dtype and size against the quant state. */
    static Nf4Part of(String key, TensorEntry packed, TensorEntry absmax, TensorEntry quantMap, TensorEntry nestedAbsmax,
                      TensorEntry nestedQuantMap, BnbQuantState state, String file) throws CheckpointLayoutException {
        String where = file + ": bitsandbytes weight \"" + key + "\"";
        if (!state.quantType().equals("nf4"))
            throw new CheckpointLayoutException(where + " is quantized as " + state.quantType()
                    + "; impasto reads NF4 only: use an NF4 or unquantized checkpoint");
        if (absmax == null || quantMap == null)
            throw new CheckpointLayoutException(where + " lacks its " + (absmax == null ? ".absmax" : ".quant_map")
                    + " tensor: the file is incomplete; re-export it");
        if (state.nested() != (nestedAbsmax != null) || state.nested() != (nestedQuantMap != null))
            throw new CheckpointLayoutException(where + ": the quant_state says nested=" + state.nested()
                    + " but the nested_absmax/nested_quant_map tensors " + (nestedAbsmax != null ? "are" : "are not")
                    + " present: the file is inconsistent; re-export it");
        long numel = state.numel();
        expect(where, packed, DType.U8, (numel + 1) / 2, "the packed 4-bit codes");
        long blocks = state.blockCount();
        expect(where, absmax, state.nested() ? DType.U8 : DType.F32, blocks, "absmax");
        expect(where, quantMap, DType.F32, 16, "quant_map");
        if (state.nested()) {
            expect(where, nestedAbsmax, DType.F32, (blocks + state.nestedBlocksize() - 1) / state.nestedBlocksize(), "nested_absmax");
            expect(where, nestedQuantMap, DType.F32, 256, "nested_quant_map");
        }
        return new Nf4Part(key, packed, absmax, quantMap, Optional.ofNullable(nestedAbsmax), Optional.ofNullable(nestedQuantMap), state);
    }

    private static void expect(String where, TensorEntry t, DType dtype, long numel, String what) throws CheckpointLayoutException {
        if (!t.isSupported() || t.dtype() != dtype || t.numel() != numel)
            throw new CheckpointLayoutException(where + ": " + what + " (" + t.name() + ") is " + t.typeName() + " "
                    + Shapes.format(t.shape()) + "; the quant_state needs " + numel + " " + dtype
                    + " values: the file is inconsistent; re-export it");
    }
}
