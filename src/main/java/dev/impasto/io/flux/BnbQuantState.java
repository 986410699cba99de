package dev.impasto.io.flux;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.Shapes;
import dev.impasto.tensor.DType;

import java.nio.charset.StandardCharsets;

/**
 * The non-tensor part of a bitsandbytes 4-bit QuantState, as {@code QuantState.as_dict(packed=True)} stores it:
 * UTF-8 JSON bytes in a uint8 tensor {@code <m>.weight.quant_state.bitsandbytes__nf4}.
 *
 * @param quantType       "nf4" (or "fp4", which impasto does not read)
 * @param blocksize       elements per absmax block (64 for diffusers/Forge exports)
 * @param dtype           the dtype the weight had before quantization (bf16/f16/f32)
 * @param shape           the weight's original shape [out, in]
 * @param nested          double quantization: absmax itself is 8-bit quantized
 * @param nestedBlocksize absmax elements per nested block (256), 0 when not nested
 * @param nestedDtype     dtype of the nested state (float32), null when not nested
 * @param nestedOffset    mean subtracted from absmax before its quantization (add it back), 0 when not nested
 */
public record BnbQuantState(String quantType, int blocksize, DType dtype, long[] shape, boolean nested, int nestedBlocksize,
                            DType nestedDtype, float nestedOffset) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public BnbQuantState {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return Shapes.numel(shape);
    }

    /** absmax entries: one per block of {@link #blocksize()} elements. */
    public long blockCount() {
        return (numel() + blocksize - 1) / blocksize;
    }

    /** Parses the JSON bytes; {@code where} names the tensor for messages. */
    public static BnbQuantState parse(byte[] json, String where) throws CheckpointLayoutException {
        JsonNode n;
        try {
            n = JSON.readTree(new String(json, StandardCharsets.UTF_8));
        } catch (JacksonException e) {
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state is not valid JSON (" + e.getOriginalMessage()
                    + "): the file is corrupt; re-download it");
        }
        if (n == null || !n.isObject())
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state is not a JSON object: the file is corrupt; re-download it");
        String type = text(n, "quant_type", where);
        int blocksize = positiveInt(n, "blocksize", where);
        DType dtype = torchDtype(text(n, "dtype", where), where);
        JsonNode s = n.get("shape");
        if (s == null || !s.isArray() || s.isEmpty())
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state has no \"shape\" list: the file is corrupt; re-export it");
        long[] shape = new long[s.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!s.get(i).canConvertToLong() || !s.get(i).isIntegralNumber() || s.get(i).longValue() <= 0)
                throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state shape " + s + " is not a list of positive integers");
            shape[i] = s.get(i).longValue();
        }
        try {
            Shapes.numel(shape);
        } catch (ArithmeticException e) {
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state shape " + s + " overflows");
        }
        boolean nested = n.has("nested_blocksize") || n.has("nested_offset");
        int nestedBlocksize = 0;
        DType nestedDtype = null;
        float nestedOffset = 0;
        if (nested) {
            nestedBlocksize = positiveInt(n, "nested_blocksize", where);
            nestedDtype = n.has("nested_dtype") ? torchDtype(text(n, "nested_dtype", where), where) : DType.F32;
            JsonNode off = n.get("nested_offset");
            if (off == null || !off.isNumber())
                throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state is nested but has no numeric \"nested_offset\"");
            nestedOffset = off.floatValue();
        }
        return new BnbQuantState(type, blocksize, dtype, shape, nested, nestedBlocksize, nestedDtype, nestedOffset);
    }

    private static String text(JsonNode n, String field, String where) throws CheckpointLayoutException {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual())
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state lacks the string \"" + field + "\": the file is corrupt; re-export it");
        return v.textValue();
    }

    private static int positiveInt(JsonNode n, String field, String where) throws CheckpointLayoutException {
        JsonNode v = n.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() <= 0)
            throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state \"" + field + "\" is " + v
                    + ", not a positive integer: the file is corrupt; re-export it");
        return v.intValue();
    }

    /** torch dtype names as bitsandbytes writes them (str(dtype) without "torch."). */
    private static DType torchDtype(String s, String where) throws CheckpointLayoutException {
        return switch (s.startsWith("torch.") ? s.substring(6) : s) {
            case "bfloat16" -> DType.BF16;
            case "float16", "half" -> DType.F16;
            case "float32", "float" -> DType.F32;
            default -> throw new CheckpointLayoutException(where + ": the bitsandbytes quant_state dtype \"" + s
                    + "\" is not bfloat16/float16/float32");
        };
    }
}
