"""CPU throughput: our pretrain loop vs Hugging Face ``BertForMaskedLM`` in a plain PyTorch loop.

Run with the trainer venv (transformers comes from the optional ``bench`` group):

    cd gpu-trainer && uv sync --group bench && cd ..
    gpu-trainer/.venv/bin/python bench/trainer_cpu.py [--preset mini] [--steps 20] [--threads 2]

Both sides get the same architecture (layers/hidden/heads/intermediate/vocab/max length), the
same tokenized corpus, batch size, masking function, optimizer and thread count. Throughput is
real (non-padding) tokens per second after warm-up steps. The baseline is what a plain loop
does: random batches padded to their longest row, logits for every position. Ours adds length
bucketing and predicts only masked positions; the second baseline line feeds HF our bucketed
batches to show how much each part contributes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from selfsup_trainer.batches import epoch_batches, step_generator
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.engine import train
from selfsup_trainer.text.data import TokenizedCorpus, pad_batch
from selfsup_trainer.text.mlm import mask_tokens
from selfsup_trainer.text.pipeline import split_documents
from selfsup_trainer.text.pretext import TextPretext
from selfsup_trainer.text.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parents[1]


def ours(config: TrainConfig, corpus: TokenizedCorpus, warmup: int, tmp: Path) -> float:
    marks: list[tuple[float, int]] = []
    pretext = TextPretext(config, config.vocab_size)
    result = train(
        pretext, corpus, corpus, config, config.steps or 0, tmp,
        callback=lambda info: marks.append((time.perf_counter(), info.tokens)),
        log=lambda _: None,
    )  # fmt: skip
    (t0, _), (t1, _) = marks[warmup - 1], marks[-1]
    print(f"  ours: final loss {result.losses[-1]:.3f}")
    return sum(tokens for _, tokens in marks[warmup:]) / (t1 - t0)


def huggingface(config: TrainConfig, corpus: TokenizedCorpus, warmup: int, bucketed: bool) -> float:
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(
        BertConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            intermediate_size=config.intermediate,
            max_position_embeddings=config.max_tokens,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
            attn_implementation="sdpa",
        )
    ).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    bucket = config.bucket_batches if bucketed else 1
    batches = epoch_batches(corpus.lengths, config.batch_size, config.seed, 0, bucket)
    marks: list[tuple[float, int]] = []
    for step in range(config.steps or 0):
        ids, mask = pad_batch([corpus.ids(int(i)) for i in batches[step % len(batches)]])
        masked, labels = mask_tokens(ids, mask, 0.15, config.vocab_size, step_generator(0, step))
        loss = model(input_ids=masked, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        marks.append((time.perf_counter(), int(mask.sum())))
    (t0, _), (t1, _) = marks[warmup - 1], marks[-1]
    print(f"  HF ({'bucketed' if bucketed else 'plain'}): final loss {loss.item():.3f}")
    return sum(tokens for _, tokens in marks[warmup:]) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO / "tests/fixtures/corpus/moby-dick-excerpt.txt"))
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        objective="mlm", preset=args.preset, vocab_size=args.vocab_size,
        max_tokens=args.max_tokens, batch_size=args.batch_size, steps=args.steps,
        log_every=1, device="cpu",
    ).resolve()  # fmt: skip
    docs, _ = split_documents(Path(args.data), config)
    tokenizer = train_tokenizer(docs, config.vocab_size, config.max_tokens)
    config.vocab_size = tokenizer.get_vocab_size()
    docs, _ = split_documents(Path(args.data), config)
    corpus = TokenizedCorpus.encode(tokenizer, docs)
    print(
        f"preset {config.preset} ({config.layers}x{config.hidden}, {config.heads} heads), "
        f"vocab {config.vocab_size}, max_tokens {config.max_tokens}, batch {config.batch_size}, "
        f"{args.steps} steps ({args.warmup} warm-up) x {args.rounds} rounds, "
        f"threads {args.threads}, "
        f"{len(corpus)} docs, mean length {corpus.lengths.mean():.1f} tokens"
    )
    # Rounds alternate the contenders and each keeps its best round, so a burst of load from
    # something else on the machine does not decide the ratio.
    ours_tps = hf_tps = hf_bucketed = 0.0
    for _ in range(args.rounds):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            ours_tps = max(ours_tps, ours(config, corpus, args.warmup, Path(tmp)))
        torch.manual_seed(0)
        hf_tps = max(hf_tps, huggingface(config, corpus, args.warmup, bucketed=False))
        torch.manual_seed(0)
        hf_bucketed = max(hf_bucketed, huggingface(config, corpus, args.warmup, bucketed=True))
    print(f"selfsup pretrain loop        : {ours_tps:10,.0f} tokens/s")
    print(f"HF BertForMaskedLM, plain    : {hf_tps:10,.0f} tokens/s")
    print(f"HF BertForMaskedLM, bucketed : {hf_bucketed:10,.0f} tokens/s")
    print(f"ratio ours / HF plain loop   : {ours_tps / hf_tps:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
