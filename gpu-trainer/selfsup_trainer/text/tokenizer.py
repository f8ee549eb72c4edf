"""WordPiece tokenizer trained on the corpus with Hugging Face ``tokenizers``.

The saved ``tokenizer.json`` must produce identical ids in the npm ``@huggingface/tokenizers``
port used at the edge, so only widely supported components are used (BertNormalizer,
BertPreTokenizer, WordPiece, TemplateProcessing). Truncation is stored; padding is not, because the
edge pads to its own batch shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, max_tokens: int, min_frequency: int = 2
) -> Tokenizer:
    """Train a lowercase BERT-style WordPiece tokenizer.

    Args:
        texts: documents, streamed (the trainer consumes the iterator once).
        vocab_size: target vocabulary size including the 5 special tokens.
        max_tokens: truncation length, [CLS] and [SEP] included.
        min_frequency: rarer pieces are not added to the vocabulary.

    Returns:
        A tokenizer whose ``encode`` adds [CLS]/[SEP] and truncates to ``max_tokens``.
    """
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    draft = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    draft.train_from_iterator(texts, trainer=trainer)
    tokenizer = _bert_pipeline(
        Tokenizer(models.WordPiece(vocab=canonical_vocab(draft.get_vocab()), unk_token="[UNK]"))
    )
    # Registered as special added tokens (as in BERT's tokenizer.json) so a literal "[MASK]" in
    # text maps to its id and decoders can skip them; they are already in the vocab at 0-4.
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    for expected, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected:  # the edge hard-codes [PAD]=0
            raise RuntimeError(f"special token {token} has id {tokenizer.token_to_id(token)}")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


def _bert_pipeline(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def canonical_vocab(vocab: dict[str, int]) -> dict[str, int]:
    """Specials at ids 0-4, every other piece in sorted order.

    The upstream trainer orders its alphabet and breaks frequency ties through hash maps, so
    ids (and occasionally a piece near the vocab-size cut) differ between processes. Sorting
    makes ids depend only on the piece set, which keeps tokenizer.json diffs readable; exact
    reproducibility comes from saving the tokenizer with every checkpoint and artifact.
    """
    rest = sorted(t for t in vocab if t not in SPECIAL_TOKENS)
    return {token: i for i, token in enumerate([*SPECIAL_TOKENS, *rest])}


@dataclass(frozen=True)
class SpecialIds:
    """Ids MLM masking needs. Ours are fixed (0-4); an imported BERT vocab has its own
    ([PAD] 0, [CLS] 101, [SEP] 102, [MASK] 103, ordinary pieces from 999)."""

    pad: int = PAD_ID
    cls: int = CLS_ID
    sep: int = SEP_ID
    mask: int = MASK_ID
    first_piece: int = len(SPECIAL_TOKENS)  # random MLM replacements are drawn from here up

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> SpecialIds:
        """Read the ids from a BERT-style vocabulary.

        Raises:
            ValueError: a special token is missing (not a BERT-style WordPiece tokenizer).
        """
        vocab = tokenizer.get_vocab()
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(
                f"tokenizer.json lacks {missing}; masked-language objectives need a BERT-style "
                "WordPiece vocabulary (use simcse, or a tokenizer with these tokens)"
            )
        # "[unused12]"-style and special entries sit at the start of BERT vocabularies.
        bracketed = [i for t, i in vocab.items() if t.startswith("[") and t.endswith("]")]
        first = 1 + max(i for i in bracketed if i < len(vocab) // 2)
        return cls(vocab["[PAD]"], vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"], first)


OUR_SPECIALS = SpecialIds()


def load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)
