// The `input` forms /v1/embeddings and /v1/classifications share (decision 0005): one schema, so
// the two routes document and accept the same text, token-id, image and series forms.
import { z } from "@hono/zod-openapi";
import { MAX_INPUTS } from "../../services/encoder/inputs";

export const EncoderInput = z
  .union(
    // The bounds below are what the handler enforces (its own messages); they are spec-only here.
    [
      z.string().openapi({ minLength: 1 }),
      z.array(z.string().openapi({ minLength: 1 })).openapi({ minItems: 1, maxItems: MAX_INPUTS }),
      z.array(z.number()).openapi({ minItems: 1 }),
      z.array(z.array(z.number()).openapi({ minItems: 1 })).openapi({ minItems: 1, maxItems: MAX_INPUTS }),
      z
        .array(z.array(z.array(z.number()).openapi({ minItems: 1 })).openapi({ minItems: 1 }))
        .openapi({ minItems: 1, maxItems: MAX_INPUTS }),
    ],
    {
      error:
        "must be a string or array of strings (text, or base64 images), token ids (number[] / number[][]), or time series (number[] / number[][] / number[][][])",
    },
  )
  .openapi({
    example: ["Call me Ishmael.", "The whale!"],
    description:
      "What to embed (or classify); the form follows the model's `modality` (`GET /v1/models/{ref}/info`). " +
      `At most ${MAX_INPUTS} inputs; empty strings and arrays are rejected.\n\n` +
      "- **text**: a string, an array of strings, one token-id array or an array of them. " +
      "`usage.prompt_tokens` counts tokens after truncation, special tokens included.\n" +
      "- **image**: a base64 PNG or JPEG (8/16-bit, grey/RGB/palette, alpha ignored) or a `data:image/png;base64,…` URL, " +
      "or an array of them; at most 16 MiB encoded and 16 megapixels decoded each (more is a 413). The Worker decodes, " +
      "resizes and normalizes each image exactly as the manifest's `preprocessing` says. " +
      "`usage.prompt_tokens` counts `image_size²` per image.\n" +
      "- **timeseries**: a 1-channel model takes one series as `number[]` or several as `number[][]`; a C-channel model " +
      "takes one series as `number[][]` (C arrays of equal length, channel-major) or several as `number[][][]`. Series " +
      "longer than the model's `max_length` keep their first points (`truncate: false` → 413); shorter ones are padded " +
      "and masked. `usage.prompt_tokens` counts observed points × channels.\n\n" +
      "Sending one modality's form to another modality's model is a 400 naming the model's modality.",
  });
