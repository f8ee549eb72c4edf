// Text inputs for /v1/embeddings: strings through the version's tokenizer or token ids as given
// (inputs.ts), embedded in micro-batches under the token budget (embed.ts). `usage` counts tokens
// after truncation, special tokens included.
import { badRequest } from "../../lib/errors";
import { embedSequences } from "./embed";
import { checkInputShape, type EmbeddingInput, imageInText, prepareInputs } from "./inputs";
import type { Embedder } from "./items";

/** A text model's `input`: the text/token-id forms (checked), or a 400 for any other shape. */
export function textForms(input: unknown): EmbeddingInput {
  const ok =
    typeof input === "string" ||
    (Array.isArray(input) &&
      (input.every((x) => typeof x === "string") ||
        input.every((x) => typeof x === "number") ||
        input.every((x) => Array.isArray(x) && x.every((t) => typeof t === "number"))));
  if (!ok) {
    throw badRequest("input: this is a text model; send a string, an array of strings, or token-id arrays.", [
      { path: "input", message: "a text model takes strings or token ids" },
    ]);
  }
  const texts = typeof input === "string" ? [input] : (input as unknown[]);
  texts.forEach((text, i) => {
    const format = typeof text === "string" ? imageInText(text) : null;
    if (!format) return;
    // Tokenized as text it would embed base64 noise with a 200; the caller meant an image model.
    const at = typeof input === "string" ? "input" : `input[${i}]`;
    throw badRequest(
      `${at}: this is a text model, but the input is a base64 ${format} image; send images to an image model (GET /v1/models lists each model's modality).`,
      [{ path: at, message: `a text model does not take images (got ${format})` }],
    );
  });
  checkInputShape(input as EmbeddingInput);
  return input as EmbeddingInput;
}

export const textEmbedder: Embedder<EmbeddingInput> = {
  parse: (_manifest, input) => textForms(input),
  async embed(enc, input, opts) {
    const prepared = prepareInputs(input, {
      tokenizer: enc.tokenizer,
      maxTokens: enc.manifest.max_tokens ?? 512,
      truncate: opts.truncate,
      vocabSize: enc.tokenizer?.vocabSize,
    });
    const vectors = await embedSequences(enc, prepared.sequences, opts.batching, opts.output);
    return { vectors, units: prepared.promptTokens };
  },
};
