import gzip
import json

import pytest

from selfsup_trainer.text.corpus import CorpusError, CorpusStats, iter_documents


def test_txt_counts_and_drops_empty_and_duplicate_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("Call me Ishmael.\n\n   \nCall me Ishmael.\nSome years ago.\n", "utf-8")
    stats = CorpusStats()
    docs = list(iter_documents(path, stats))
    assert docs == ["Call me Ishmael.", "Some years ago."]
    assert stats.to_dict() == {
        "lines": 5,
        "used": 2,
        "empty": 2,
        "duplicates": 1,
        "bytes": path.stat().st_size,
    }


def test_jsonl_and_gzip(tmp_path):
    lines = [{"text": "Call me Ishmael."}, {"text": ""}, {"text": "Some years ago."}]
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(x) + "\n" for x in lines)
    stats = CorpusStats()
    assert list(iter_documents(path, stats)) == ["Call me Ishmael.", "Some years ago."]
    assert (stats.lines, stats.used, stats.empty) == (3, 2, 1)


def test_real_corpus_excerpt(corpus_path):
    stats = CorpusStats()
    count = sum(1 for _ in iter_documents(corpus_path, stats))
    assert count == stats.used > 1500
    assert stats.duplicates > 0  # short sentences like "No more!" recur in the book


def test_bad_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\nsecond line\nna\xefve caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt:3: not valid UTF-8"):
        list(iter_documents(path))


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no text"}\n', "utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: expected an object"):
        list(iter_documents(path))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_corpus_without_usable_line(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, "utf-8")
    with pytest.raises(CorpusError, match=r"empty\.txt: no usable line"):
        list(iter_documents(path))


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_documents(tmp_path / "nope.txt"))
