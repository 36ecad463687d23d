"""``synthembed vocab build|show`` through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import ok_json, run, user_error

pytest.importorskip("typer")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "movies.csv"
    path.write_text("id,genres\n1,Drama|Comedy\n2,Drama\n3,Drama|War\n4,\n5,Comedy\n")
    return path


def test_build_from_a_csv_column_and_show(tmp_path: Path, table: Path) -> None:
    out = tmp_path / "vocab.json"
    got = ok_json("vocab", "build", table, "--column", "genres", "--split", "|", "-o", out)
    assert got["tokens"] == 3 and got["rows_read"] == 5 and got["oov"] == "unk"
    from synthembed import Vocabulary

    vocab = Vocabulary.load(out)
    assert vocab.tokens[:3] == ["Drama", "Comedy", "War"]
    shown = ok_json("vocab", "show", out, "--top", "2")
    assert [r["token"] for r in shown["top"]] == ["Drama", "Comedy"]
    assert shown["top"][0]["count"] == 3
    text = run("vocab", "show", out)
    assert text.returncode == 0 and "Drama" in text.stdout


def test_min_freq_max_size_and_hash_oov(tmp_path: Path, table: Path) -> None:
    out = tmp_path / "v.json"
    got = ok_json(
        "vocab", "build", table, "-c", "genres", "--split", "|", "--min-freq", "2",
        "--max-size", "1", "--oov", "hash:8", "-o", out,
    )  # fmt: skip
    assert got["tokens"] == 1 and got["num_oov_buckets"] == 8 and got["oov"] == "hash"


def test_build_from_text_and_parquet(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("the cat sat\nthe dog\n")
    assert ok_json("vocab", "build", text, "-o", tmp_path / "t.json")["tokens"] == 4
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"word": ["a", "b", "a", None]})
    frame.to_parquet(tmp_path / "w.parquet")
    got = ok_json("vocab", "build", tmp_path / "w.parquet", "-c", "word", "-o", tmp_path / "p.json")
    assert got["tokens"] == 2


def test_quiet_prints_nothing(tmp_path: Path, table: Path) -> None:
    done = run("vocab", "build", table, "-c", "genres", "-o", tmp_path / "v.json", "--quiet")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_bad_usage_exits_2_and_names_the_value(tmp_path: Path, table: Path) -> None:
    out = tmp_path / "v.json"
    user_error(run("vocab", "build", table, "-c", "nope", "-o", out), 2, "'nope'", "genres")
    user_error(
        run("vocab", "build", table, "-c", "genres", "--oov", "hash:0", "-o", out), 2, "hash:0"
    )
    user_error(run("vocab", "build", table, "-o", out), 2, "--column")
    user_error(
        run("vocab", "build", tmp_path / "absent.csv", "-c", "g", "-o", out), 2, "absent.csv"
    )
    user_error(run("vocab", "build", table, "-c", "genres", "--min-freq", "0", "-o", out), 2)
    user_error(run("vocab", "build", table, "-c", "genres", "-o", tmp_path / "v.txt"), 2, ".json")
    assert not out.exists()


def test_a_broken_vocabulary_file_fails_with_one_line(tmp_path: Path, table: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    user_error(run("vocab", "show", bad), 1, str(bad))
    bad.write_text(json.dumps({"format": "other"}))
    user_error(run("vocab", "show", bad), 1, "not a synthembed vocabulary")
    debug = run("vocab", "show", bad, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
