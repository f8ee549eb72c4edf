import { Tokenizer } from "@huggingface/tokenizers";

export type Encoded = {
  ids: number[];
  /** Length before truncation (special tokens included). */
  fullLength: number;
  truncated: boolean;
};

export type TokenDetail = { id: number; token: string; special: boolean; start: number; end: number } | null;

type TokenizerJson = {
  model?: { type?: string; continuing_subword_prefix?: string; unk_token?: string };
  truncation?: { max_length?: number; direction?: string } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
};

/**
 * A version's `tokenizer.json` through `@huggingface/tokenizers`, plus what that port leaves out:
 * truncation (the Python library's stored `truncation`, or `max_tokens`; the content is cut and the
 * post-processor's special tokens kept, as Python does) and character offsets for `/v1/tokenize`.
 */
export class TextTokenizer {
  private readonly tok: Tokenizer;
  readonly maxTokens: number;
  private readonly prefix: number[];
  private readonly suffix: number[];
  private readonly truncateLeft: boolean;
  private readonly specialIds: Set<number>;
  private readonly subwordPrefix: string | null;
  private readonly unk: string | null;

  constructor(json: TokenizerJson, maxTokens: number) {
    this.tok = new Tokenizer(json, {});
    const stored = json.truncation?.max_length;
    this.maxTokens = stored ? Math.min(stored, maxTokens) : maxTokens;
    this.truncateLeft = json.truncation?.direction === "Left";
    this.specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    this.subwordPrefix = json.model?.type === "WordPiece" ? (json.model.continuing_subword_prefix ?? "##") : null;
    this.unk = json.model?.unk_token ?? null;
    // Which ids the post-processor puts around a single sequence ([CLS] … [SEP] for BERT).
    const probe = "hello world";
    const bare = this.tok.encode(probe, { add_special_tokens: false }).ids;
    const full = this.tok.encode(probe).ids;
    const at = indexOfRun(full, bare);
    if (at < 0) throw new Error("tokenizer.json: cannot locate the content inside the post-processed ids");
    this.prefix = full.slice(0, at);
    this.suffix = full.slice(at + bare.length);
    // The trainer's tokenizer.json keeps its specials in the vocabulary (no added_tokens): what the
    // post-processor adds is special too.
    for (const id of [...this.prefix, ...this.suffix]) this.specialIds.add(id);
  }

  encode(text: string, truncate = true): Encoded {
    const content = this.tok.encode(text, { add_special_tokens: false }).ids;
    const fullLength = content.length + this.prefix.length + this.suffix.length;
    const room = Math.max(0, this.maxTokens - this.prefix.length - this.suffix.length);
    const truncated = fullLength > this.maxTokens;
    const kept =
      truncated && truncate
        ? this.truncateLeft
          ? content.slice(content.length - room)
          : content.slice(0, room)
        : content;
    return { ids: [...this.prefix, ...kept, ...this.suffix], fullLength, truncated };
  }

  private vocab?: number;
  get vocabSize(): number {
    this.vocab ??= this.tok.get_vocab(true).size;
    return this.vocab;
  }

  idToToken(id: number): string {
    return this.tok.id_to_token(id) ?? "";
  }

  /**
   * Tokens with [start, end) offsets into `text` (UTF-16 code units, as JavaScript slices strings).
   * Special tokens get [0, 0]. Offsets are recovered by normalising `text` one character at a time
   * and finding each piece in order, which is exact for WordPiece (BERT) tokenizers; other models
   * get `null` offsets where a piece cannot be located.
   */
  details(text: string, ids: number[]): TokenDetail[] {
    const norm: string[] = [];
    const origin: [number, number][] = [];
    const normalizer = (this.tok as unknown as { normalizer?: { normalize(s: string): string } | null }).normalizer;
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i) as number;
      const width = cp > 0xffff ? 2 : 1;
      const ch = text.slice(i, i + width);
      const n = normalizer ? normalizer.normalize(ch) : ch;
      for (const c of n) {
        norm.push(c);
        origin.push([i, i + width]);
      }
      i += width;
    }
    const normText = norm.join("");
    // UTF-16 index in normText -> index into `norm` (code points).
    const cpAt: number[] = [];
    norm.forEach((c, k) => {
      for (let j = 0; j < c.length; j++) cpAt.push(k);
    });
    let cursor = 0;
    return ids.map((id) => {
      const token = this.idToToken(id);
      if (this.specialIds.has(id) && token !== this.unk) return { id, token, special: true, start: 0, end: 0 };
      let piece = token;
      if (this.subwordPrefix && piece.startsWith(this.subwordPrefix) && piece !== this.subwordPrefix)
        piece = piece.slice(this.subwordPrefix.length);
      while (cursor < normText.length && /\s/.test(normText[cursor] as string)) cursor++;
      let start = cursor;
      let end: number;
      if (token === this.unk) {
        end = start;
        while (end < normText.length && !/\s/.test(normText[end] as string)) end++;
      } else if (normText.startsWith(piece, cursor)) {
        end = cursor + piece.length;
      } else {
        const found = normText.indexOf(piece, cursor);
        if (found < 0) return { id, token, special: false, start: -1, end: -1 };
        start = found;
        end = found + piece.length;
      }
      cursor = end;
      const a = origin[cpAt[start] as number];
      const b = origin[cpAt[end - 1] as number];
      return { id, token, special: false, start: a ? a[0] : 0, end: b ? b[1] : 0 };
    });
  }
}

function indexOfRun(haystack: number[], needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
