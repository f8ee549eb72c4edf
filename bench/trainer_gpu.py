"""GPU throughput of the pretrain loop: BERT-base MLM, sequence length 128, bf16, tokens/s + MFU.

    gpu-trainer/.venv/bin/python bench/trainer_gpu.py [--batch-size 128] [--steps 60] [--compile]

Sequences are the corpus's token stream cut into full 128-token rows ([CLS] ... [SEP]), so every
row is the benchmark length and no padding enters the measurement. MFU uses the FLOPs formula in
``selfsup_trainer.mfu.flops_per_token`` against the H100 bf16 dense peak (989 TFLOP/s).
Exits with status 2 and a message when CUDA is not available.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.engine import train
from selfsup_trainer.mfu import H100_BF16_PEAK_FLOPS, flops_per_token
from selfsup_trainer.text.data import TokenizedCorpus
from selfsup_trainer.text.pipeline import split_documents
from selfsup_trainer.text.pretext import TextPretext, non_embedding_parameters
from selfsup_trainer.text.tokenizer import CLS_ID, SEP_ID, train_tokenizer

REPO = Path(__file__).resolve().parents[1]


def fixed_length_corpus(corpus: TokenizedCorpus, length: int, rows: int) -> TokenizedCorpus:
    """Concatenate document bodies and cut them into ``rows`` rows of exactly ``length`` tokens."""
    body = np.concatenate([corpus.ids(i)[1:-1] for i in range(len(corpus))])
    per_row = length - 2
    repeats = -(-rows * per_row // len(body))
    body = np.tile(body, repeats)[: rows * per_row].reshape(rows, per_row)
    cls = np.full((rows, 1), CLS_ID, dtype=np.int32)
    sep = np.full((rows, 1), SEP_ID, dtype=np.int32)
    tokens = np.concatenate([cls, body, sep], axis=1).reshape(-1)
    return TokenizedCorpus(tokens, np.arange(0, rows * length + 1, length, dtype=np.int64))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO / "tests/fixtures/corpus/moby-dick-excerpt.txt"))
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("trainer_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); "
              "run bench/trainer_cpu.py on CPU-only machines", file=sys.stderr)  # fmt: skip
        return 2
    config = TrainConfig(
        objective="mlm", preset=args.preset, vocab_size=args.vocab_size, max_tokens=args.seq,
        batch_size=args.batch_size, steps=args.steps, log_every=1, compile=args.compile,
        bucket_batches=1, device="cuda",
    ).resolve()  # fmt: skip
    docs, _ = split_documents(Path(args.data), config)
    tokenizer = train_tokenizer(docs, config.vocab_size, config.max_tokens)
    docs, _ = split_documents(Path(args.data), config)
    corpus = fixed_length_corpus(
        TokenizedCorpus.encode(tokenizer, docs),
        args.seq,
        args.batch_size * (args.steps + 1),
    )
    vocab = tokenizer.get_vocab_size()
    pretext = TextPretext(config, vocab)
    n_params = non_embedding_parameters(pretext)
    marks: list[tuple[float, int]] = []

    def on_step(info) -> None:
        torch.cuda.synchronize()
        marks.append((time.perf_counter(), info.tokens))

    with tempfile.TemporaryDirectory() as tmp:
        train(pretext, corpus, corpus, config, args.steps, Path(tmp), callback=on_step,
              log=lambda _: None)  # fmt: skip
    (t0, _), (t1, _) = marks[args.warmup - 1], marks[-1]
    tps = sum(t for _, t in marks[args.warmup :]) / (t1 - t0)
    flops = flops_per_token(
        n_params,
        config.layers or 0,
        config.hidden or 0,
        args.seq,
        vocab,
        config.mask_rate,
    )
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(
        f"preset {config.preset}: {n_params / 1e6:.1f}M non-embedding params (vocab {vocab}), "
        f"seq {args.seq}, batch {args.batch_size}, bf16, compile={args.compile}"
    )
    print(f"tokens/s {tps:,.0f}  MFU {tps * flops / H100_BF16_PEAK_FLOPS:.1%} "
          f"(of 989 TFLOP/s; {flops / 1e9:.2f} GFLOP/token)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
