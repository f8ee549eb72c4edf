// Text inputs: OpenAI's `input` forms (strings or token ids) to token-id sequences.
import { badRequest } from "../../lib/errors";
import { MAX_INPUTS, tooLarge } from "./items";
import type { TextTokenizer } from "./tokenizer";

export { MAX_INPUTS };

/** Total tokens per request (after truncation, special tokens included); OpenAI's is 300,000 too. */
export const MAX_REQUEST_TOKENS = 300_000;

export type EmbeddingInput = string | string[] | number[] | number[][];

export type PreparedInputs = { sequences: number[][]; promptTokens: number };

/**
 * Validates OpenAI's `input` forms and turns them into token-id sequences: strings through the
 * version's tokenizer (truncated to max_tokens unless `truncate` is false, then 413 naming the
 * input), token ids as given (checked against the vocabulary). Errors name the offending index.
 */
export function prepareInputs(
  input: EmbeddingInput,
  opts: { tokenizer: TextTokenizer | null; maxTokens: number; truncate: boolean; vocabSize?: number },
): PreparedInputs {
  const items = checkInputShape(input);
  const single = typeof input === "string" || isIdList(input);
  const at = (i: number) => (single ? "input" : `input[${i}]`);
  const sequences: number[][] = [];
  let promptTokens = 0;
  items.forEach((item, i) => {
    let ids: number[];
    if (typeof item === "string") {
      if (item.length === 0) {
        throw badRequest(`${at(i)}: must not be empty; send at least one character.`, [
          { path: at(i), message: "must not be empty" },
        ]);
      }
      if (!opts.tokenizer) throw badRequest(`${at(i)}: this model takes token ids, not text.`);
      const enc = opts.tokenizer.encode(item, opts.truncate);
      if (enc.truncated && !opts.truncate) {
        throw tooLarge(
          `${at(i)}: is ${enc.fullLength} tokens, over the model's max_tokens ${opts.tokenizer.maxTokens}; shorten it or send truncate: true.`,
          at(i),
        );
      }
      ids = enc.ids;
    } else {
      if (item.length === 0) {
        throw badRequest(`${at(i)}: must not be an empty token array.`, [
          { path: at(i), message: "must not be empty" },
        ]);
      }
      const bad = item.findIndex(
        (t) => !Number.isInteger(t) || t < 0 || (opts.vocabSize !== undefined && t >= opts.vocabSize),
      );
      if (bad >= 0) {
        const msg = `token id ${item[bad]} is not in the vocabulary (0..${(opts.vocabSize ?? 1) - 1})`;
        throw badRequest(`${at(i)}[${bad}]: ${msg}.`, [{ path: `${at(i)}[${bad}]`, message: msg }]);
      }
      if (item.length > opts.maxTokens) {
        if (!opts.truncate) {
          throw tooLarge(
            `${at(i)}: is ${item.length} tokens, over the model's max_tokens ${opts.maxTokens}; shorten it or send truncate: true.`,
            at(i),
          );
        }
        ids = item.slice(0, opts.maxTokens);
      } else {
        ids = item;
      }
    }
    promptTokens += ids.length;
    if (promptTokens > MAX_REQUEST_TOKENS) {
      throw tooLarge(
        `input: more than ${MAX_REQUEST_TOKENS} tokens in one request (reached at ${at(i)}); split it into several requests.`,
        "input",
      );
    }
    sequences.push(ids);
  });
  return { sequences, promptTokens };
}

/**
 * The checks that need no tokenizer (so they answer before a model is loaded): not empty, at most
 * MAX_INPUTS items, no empty string or token array. Returns the inputs as a list.
 */
export function checkInputShape(input: EmbeddingInput, field = "input"): (string | number[])[] {
  const items: (string | number[])[] = typeof input === "string" ? [input] : isIdList(input) ? [input] : input;
  if (Array.isArray(input) && input.length === 0) {
    throw badRequest(`${field}: must not be empty; send a string, or an array of 1 to ${MAX_INPUTS} inputs.`, [
      { path: field, message: "must not be empty" },
    ]);
  }
  if (items.length > MAX_INPUTS) {
    throw badRequest(`${field}: at most ${MAX_INPUTS} inputs per request; got ${items.length}.`, [
      { path: field, message: `at most ${MAX_INPUTS} inputs` },
    ]);
  }
  const single = typeof input === "string" || isIdList(input);
  items.forEach((item, i) => {
    if (item.length === 0) {
      const at = single ? field : `${field}[${i}]`;
      const what =
        typeof item === "string"
          ? "must not be empty; send at least one character"
          : "must not be an empty token array";
      throw badRequest(`${at}: ${what}.`, [{ path: at, message: "must not be empty" }]);
    }
  });
  return items;
}

function isIdList(input: EmbeddingInput): input is number[] {
  return Array.isArray(input) && input.length > 0 && typeof input[0] === "number";
}

// Base64 of the PNG signature (89 50 4E 47 0D 0A 1A 0A) and of a JPEG's SOI + marker (FF D8 FF).
const IMAGE_MAGIC: [string, RegExp][] = [
  ["PNG", /^iVBORw0KGgo[A-Za-z0-9+/_-]{8,}={0,2}$/],
  ["JPEG", /^\/9j\/[A-Za-z0-9+/_-]{8,}={0,2}$/],
];

/**
 * Which image format a text model's string input really is (a base64 PNG/JPEG or a
 * `data:image/…` URL), or null for text. Only whole-string base64 with an image signature counts,
 * so prose that merely starts with those letters stays text.
 */
export function imageInText(s: string): string | null {
  const url = /^data:image\/([a-z0-9.+-]+)[;,]/i.exec(s);
  if (url) return (url[1] as string).toUpperCase();
  // MIME base64 wraps lines; prose has spaces, which base64 never does.
  const body = s.length > 16 ? s.replace(/\r?\n/g, "") : "";
  for (const [format, magic] of IMAGE_MAGIC) if (magic.test(body)) return format;
  return null;
}
