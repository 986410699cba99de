/**
 * Tokenizers of FLUX's two text encoders, in plain Java: {@link dev.impasto.encoders.tokenizer.ClipTokenizer}
 * (CLIP ViT-L/14 byte-level BPE, 77 ids) and {@link dev.impasto.encoders.tokenizer.T5Tokenizer} (T5-v1.1
 * SentencePiece UNIGRAM, 512 ids for FLUX.1-dev, 256 for FLUX.1-schnell).
 *
 * <p>Each file type is encoded as its reference library encodes it: tokenizer.json as HF {@code tokenizers} does
 * (added tokens, normalizer, pre-tokenizer, model and post-processor of the file), spiece.model as
 * {@code sentencepiece} does, openai/CLIP's merges list and HF's vocab.json + merges.txt with the pipeline
 * transformers' CLIPTokenizer builds. The test suite checks ids against both libraries.
 *
 * <p>Where the references themselves disagree, and what this package does:
 * <ul>
 *   <li>CLIP: HF's fast tokenizer (and transformers 5) applies no ftfy and no html.unescape; openai/CLIP applies
 *       both, and transformers 4's slow CLIPTokenizer without ftfy installed used BERT's basic tokenizer, which puts
 *       each CJK ideograph in its own word. This package follows the fast tokenizer.</li>
 *   <li>T5 from tokenizer.json follows the file, Precompiled (nmt_nfkc) normalizer included. transformers 5 keeps
 *       only the vocabulary of a T5 tokenizer.json and rebuilds the pipeline without that normalizer, so it differs
 *       on text that NFKC changes (full-width letters, ligatures, odd spaces); sentencepiece, which FLUX's and T5's
 *       own training used, applies it like this package does.</li>
 *   <li>T5 from spiece.model treats special-token text such as {@code </s>} or {@code <extra_id_0>} in a prompt as
 *       ordinary text, as sentencepiece does; tokenizer.json files list them as added tokens, which are recognised.</li>
 *   <li>HF's Precompiled normalizer replaces a whole grapheme cluster by the first match of its prefix, sentencepiece
 *       takes the longest match over the raw bytes; each file type gets its own library's rule. Grapheme clusters
 *       come from {@link java.text.BreakIterator}; a Unicode version newer or older than the Rust crate's can split
 *       a rare emoji sequence differently.</li>
 * </ul>
 */
package dev.impasto.encoders.tokenizer;
