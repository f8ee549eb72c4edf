import math

import numpy as np
import torch
import torch.nn.functional as F

from selfsup_trainer.batches import epoch_batches
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.losses import info_nce
from selfsup_trainer.text.data import TokenizedCorpus, pad_batch
from selfsup_trainer.text.mlm import IGNORE, MLMHead, mask_tokens, mlm_loss
from selfsup_trainer.text.model import Encoder
from selfsup_trainer.text.nsp import MLMNSP, NSPHead, make_pair
from selfsup_trainer.text.pretext import TextPretext
from selfsup_trainer.text.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID

VOCAB = 300


def tiny_config(**kw) -> TrainConfig:
    return TrainConfig(steps=1, vocab_size=VOCAB, max_tokens=32, **kw).resolve()


def random_batch(gen, batch=64, max_len=32):
    lengths = torch.randint(3, max_len + 1, (batch,), generator=gen)
    seqs = []
    for n in lengths.tolist():
        body = torch.randint(5, VOCAB, (n - 2,), generator=gen).numpy()
        seqs.append(np.array([CLS_ID, *body, SEP_ID]))
    return pad_batch(seqs)


def test_info_nce_matches_explicit_loops():
    gen = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    b = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    t = 0.05
    total = 0.0
    for i in range(6):
        positive = math.exp(float(a[i] @ b[i]) / t)
        denominator = sum(math.exp(float(a[i] @ b[j]) / t) for j in range(6))
        total += -math.log(positive / denominator)
    assert abs(info_nce(a, b, t).item() - total / 6) < 1e-4


def test_mlm_loss_equals_full_vocab_loss_over_masked_positions_only():
    torch.manual_seed(0)
    config = tiny_config()
    encoder, gen = Encoder(config, VOCAB).eval(), torch.Generator().manual_seed(1)
    head = MLMHead(encoder)
    ids, mask = random_batch(gen, batch=8)
    masked, labels = mask_tokens(ids, mask, 0.15, VOCAB, gen)
    loss, stats = mlm_loss(encoder, head, masked, mask, labels)
    # Naive reference: logits at every position, cross-entropy ignoring unmasked ones.
    states = encoder.hidden_states(masked, mask)
    logits = head(states, encoder.tok.weight)
    reference = F.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(loss, reference, atol=1e-5)
    assert int(stats["count"]) == int((labels != IGNORE).sum())
    # Changing a label at an unmasked position must not change the loss.
    assert labels[0, 0] == IGNORE  # [CLS] is never a target


def test_decoder_is_tied_to_input_embeddings():
    pretext = TextPretext(tiny_config(objective="mlm"), VOCAB)
    names = [n for n, _ in pretext.named_parameters()]
    assert not any("decoder" in n for n in names)
    assert pretext.heads["mlm"].bias.shape == (VOCAB,)


def test_masking_statistics():
    gen = torch.Generator().manual_seed(0)
    ids, mask = random_batch(gen, batch=512)
    masked, labels = mask_tokens(ids, mask, 0.15, VOCAB, gen)
    selected = labels != IGNORE
    maskable = (mask == 1) & (ids != CLS_ID) & (ids != SEP_ID) & (ids != PAD_ID)
    assert not (selected & ~maskable).any(), "special tokens or padding were selected"
    rate = selected.sum().item() / maskable.sum().item()
    assert abs(rate - 0.15) < 0.01
    n = selected.sum().item()
    to_mask = (masked[selected] == MASK_ID).sum().item() / n
    unchanged = (masked[selected] == ids[selected]).sum().item() / n
    random_ = 1 - to_mask - unchanged
    assert abs(to_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02  # includes random draws that hit the same id (~0.03%)
    assert abs(random_ - 0.1) < 0.02
    assert torch.equal(masked[~selected], ids[~selected])
    assert (masked[mask == 0] == PAD_ID).all()


def test_masking_always_selects_a_token():
    gen = torch.Generator().manual_seed(0)
    ids, mask = pad_batch([np.array([CLS_ID, 7, SEP_ID])])
    for _ in range(20):
        _, labels = mask_tokens(ids, mask, 0.01, VOCAB, gen)
        assert (labels != IGNORE).sum() >= 1


def test_nsp_pairs():
    ids, types = make_pair(
        np.array([CLS_ID, 10, 11, 12, SEP_ID]), np.array([CLS_ID, 20, SEP_ID]), 8
    )
    assert ids.tolist() == [CLS_ID, 10, 11, 12, SEP_ID, 20, SEP_ID]
    assert types.tolist() == [0, 0, 0, 0, 0, 1, 1]
    long_a = np.array([CLS_ID, *range(10, 30), SEP_ID])
    ids, types = make_pair(long_a, np.array([CLS_ID, 40, 41, SEP_ID]), 10)
    assert len(ids) == 10 and ids.tolist()[-3:] == [40, 41, SEP_ID]

    seqs = [np.array([CLS_ID, 5 + i, 6 + i, SEP_ID]) for i in range(200)]
    corpus = TokenizedCorpus(
        np.concatenate(seqs).astype(np.int32), np.arange(0, 4 * 201, 4, dtype=np.int64)
    )
    config = tiny_config(objective="mlm+nsp")
    encoder = Encoder(config, VOCAB)
    objective = MLMNSP(MLMHead(encoder), NSPHead(config.hidden), 0.15, VOCAB, 32)
    batch = objective.collate(corpus, np.arange(0, 100), torch.Generator().manual_seed(0))
    labels = batch["nsp_labels"]
    assert 0.3 < labels.float().mean() < 0.7
    # Every pair has a B segment, marked by token type 1 up to and including the final [SEP].
    assert (batch["token_type_ids"].sum(1) >= 2).all()
    loss, stats = objective.loss(encoder, batch)
    assert loss.isfinite() and "nsp_correct" in stats


def test_length_bucketing_reduces_padding_and_keeps_every_document():
    lengths = np.random.default_rng(0).integers(3, 128, size=1000)
    padded = {}
    for bucket in (1, 50):
        batches = epoch_batches(lengths, 32, seed=0, epoch=0, bucket_batches=bucket)
        padded[bucket] = sum(len(b) * lengths[b].max() for b in batches)
        seen = np.concatenate(batches)
        assert len(set(seen.tolist())) == len(seen) >= 1000 - 32
    assert padded[50] < 0.7 * padded[1]
    ranks = [epoch_batches(lengths, 32, 0, 0, 50, rank=r, world_size=2) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    assert not set(np.concatenate(ranks[0]).tolist()) & set(np.concatenate(ranks[1]).tolist())


def test_pooling_output_is_unit_norm_and_ignores_padding():
    torch.manual_seed(0)
    encoder = Encoder(tiny_config(), VOCAB).eval()
    ids, mask = pad_batch([np.array([CLS_ID, 7, 8, SEP_ID]), np.array([CLS_ID, 9, SEP_ID])])
    out = encoder(ids, mask)
    assert out.shape == (2, 128)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    alone = encoder(ids[1:, :3], mask[1:, :3])
    assert torch.allclose(out[1], alone[0], atol=1e-5)
