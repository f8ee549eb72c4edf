"""Series readers on real UCR/UEA data (sktime's bundled copies) and on malformed files."""

import gzip
import json

import numpy as np
import pytest
from sktime.datasets import load_basic_motions, load_italy_power_demand

from selfsup_trainer.series.data import SeriesError, batch_arrays, heldout_split, read_series


@pytest.fixture(scope="module")
def italy():
    x, y = load_italy_power_demand(split="train", return_type="numpy3D")
    return x.astype(np.float32), [str(v) for v in y]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_univariate_matches_source(tmp_path, italy):
    x, y = italy
    rows = [{"values": s[0].tolist(), "label": c} for s, c in zip(x, y, strict=True)]
    series = read_series(write_jsonl(tmp_path / "italy.jsonl", rows))
    assert series.values.shape == (67, 1, 24) and series.values.dtype == np.float32
    np.testing.assert_array_equal(series.values, x)
    assert series.observed.min() == 1 and list(series.lengths) == [24] * 67
    assert series.labels == y
    assert series.stats["classes"] == 2 and series.stats["points"] == 67 * 24


def test_jsonl_gz_multivariate_variable_length(tmp_path):
    x, y = load_basic_motions(split="train", return_type="numpy3D")
    keep = [100, 37, 64, 100]
    rows = [{"values": x[i][:, : keep[i]].tolist(), "label": y[i]} for i in range(4)]
    path = tmp_path / "motions.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    series = read_series(path)
    assert series.values.shape == (4, 6, 100) and series.channels == 6
    assert list(series.lengths) == keep
    np.testing.assert_allclose(series.values[1, :, :37], x[1][:, :37], rtol=1e-6)
    assert series.values[1, :, 37:].max() == 0 and series.observed[1, 36:38].tolist() == [1, 0]
    mean, std = series.channel_stats()
    points = np.concatenate([x[i][:, : keep[i]] for i in range(4)], axis=1)
    np.testing.assert_allclose(mean, points.mean(1), rtol=1e-5)
    np.testing.assert_allclose(std, points.std(1), rtol=1e-5)


def test_csv_with_label_column_and_trailing_empty_cells(tmp_path, italy):
    x, y = italy
    lines = ["label," + ",".join(f"h{t}" for t in range(24))]
    for i in range(10):
        n = 24 if i % 3 else 17
        lines.append(",".join([y[i], *(f"{v:.6f}" for v in x[i, 0, :n]), *[""] * (24 - n)]))
    path = tmp_path / "italy.csv.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    series = read_series(path)
    assert series.labels == y[:10]
    assert list(series.lengths) == [17, 24, 24, 17, 24, 24, 17, 24, 24, 17]
    np.testing.assert_allclose(series.values[0, 0, :17], x[0, 0, :17], atol=1e-6)


def test_csv_without_label_and_pandas_integer_header(tmp_path, italy):
    x, _ = italy
    lines = [",".join(str(t) for t in range(24))]
    lines += [",".join(f"{v:.6f}" for v in s[0]) for s in x[:5]]
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n")
    series = read_series(tmp_path / "a.csv")
    assert series.labels is None and series.values.shape == (5, 1, 24)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nan.jsonl", '{"values": [1, 2]}\n{"values": [1, NaN, 3]}\n', 'line 2, "values"[1]'),
        ("text.jsonl", '{"values": [1, "2"]}\n', '"2" is not a number'),
        ("null.jsonl", '{"values": [[1, 2], [3, null]]}\n', '"values"[1][1]: null'),
        ("bool.jsonl", '{"values": [1, true]}\n', "true is not a number"),
        ("ragged.jsonl", '{"values": [[1, 2, 3], [4, 5]]}\n', "channel 1 has 2 points"),
        ("mixed.jsonl", '{"values": [[1, 2], 3]}\n', "channel 1 is not an array"),
        ("chan.jsonl", '{"values": [1, 2]}\n{"values": [[1], [2]]}\n', "record 2 has 2 channel"),
        ("empty.jsonl", '{"values": []}\n', "non-empty array"),
        ("json.jsonl", '{"values": [1, 2]\n', "line 1: invalid JSON"),
        ("nokey.jsonl", '{"series": [1, 2]}\n', 'expected an object with "values"'),
        ("gap.csv", "a,b,c\n1,,3\n", "line 2, column 'b': empty cell inside"),
        ("word.csv", "a,b,label\n1,x,1\n", "line 2, column 'b': 'x' is not a number"),
        ("nan.csv", "a,b\n1,nan\n", "line 2, column 'b': nan is not finite"),
        ("wide.csv", "a,b\n1,2,3\n", "line 2: 3 cells but the header has 2"),
        ("blank.csv", "a,b,label\n,,cat\n", "line 2: the series is empty"),
        ("nohead.csv", "0.5,0.7\n0.1,0.2\n", "line 1 looks like data ('0.5')"),
        ("none.jsonl", "\n\n", "no series found"),
        ("big.jsonl", '{"values": [1, 1e39]}\n', 'line 1, "values"[1]: 1e+39 is beyond float32'),
        ("inf.jsonl", '{"values": [1, 1e400]}\n', 'line 1, "values"[1]: inf is not finite'),
        ("big.csv", "a,b\n1,-1e39\n", "line 2, column 'b': -1e+39 is beyond float32"),
        ("wide.jsonl", json.dumps({"values": [[1.0]] * 257}) + "\n", "257 channels; at most 256"),
    ],
)
def test_malformed_files_name_line_column_and_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SeriesError) as info:
        read_series(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_float32_max_is_accepted_and_constant_channel_std_is_floored(tmp_path):
    rows = [{"values": [[3.4028234663852886e38, 0.0], [5.0, 5.0]]}, {"values": [[1, 2], [5, 5]]}]
    series = read_series(write_jsonl(tmp_path / "edge.jsonl", rows))
    assert np.isfinite(series.values).all()
    _, std = series.subset(np.array([1])).channel_stats()
    assert std[1] == pytest.approx(1e-3) and std[0] == pytest.approx(0.5)


def test_probe_sets_need_a_label_per_series(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"values": [1, 2], "label": "a"}, {"values": [3]}])
    with pytest.raises(SeriesError, match="record 2 has no label"):
        read_series(path).require_labels(path)


def test_heldout_split_is_deterministic_and_order_independent(tmp_path, italy):
    x, _ = italy
    rows = [{"values": s[0].tolist()} for s in x]
    a = read_series(write_jsonl(tmp_path / "a.jsonl", rows))
    b = read_series(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    train_a, held_a = heldout_split(a, 0.1, 256)
    train_b, held_b = heldout_split(b, 0.1, 256)
    assert len(held_a) == 7 and len(train_a) == 60
    key = lambda s: sorted(map(bytes, s.values))  # noqa: E731
    assert key(held_a) == key(held_b) and key(train_a) == key(train_b)
    assert len(heldout_split(a, 0.01, 256)[1]) == 2  # never fewer than 2
    assert len(heldout_split(a, 0.4, 5)[1]) == 5  # heldout_max caps it
    with pytest.raises(SeriesError, match="at least 4"):
        heldout_split(a.subset(np.arange(3)), 0.1, 256)


def test_fit_and_batch_arrays_cut_to_the_patch_grid(tmp_path):
    rows = [{"values": list(range(1, n + 1))} for n in (5, 30, 11)]
    series = read_series(write_jsonl(tmp_path / "v.jsonl", rows)).fit(24)  # keep_first
    assert list(series.lengths) == [5, 24, 11] and series.values[1, 0, -1] == 24
    values, observed = batch_arrays(series, np.array([0, 2]), patch=8)
    assert values.shape == (2, 1, 16) and observed.sum(1).tolist() == [5, 11]


def test_max_length_truncates_while_reading_and_stats_describe_the_file(tmp_path):
    rows = [{"values": list(range(n))} for n in (5, 300, 40)]
    series = read_series(write_jsonl(tmp_path / "long.jsonl", rows), max_length=32)
    assert series.values.shape == (3, 1, 32) and list(series.lengths) == [5, 32, 32]
    assert series.stats["max_length"] == 300 and series.stats["truncated"] == 2
    assert series.values[1, 0, -1] == 31  # keep_first
