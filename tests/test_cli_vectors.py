"""``synthembed vectors inspect|convert|neighbors|evaluate`` through the real console script.

The files are gensim's shipped test data: real word2vec vectors, WordSim-353 and
the word2vec analogy questions.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cli_support import gensim_data, ok_json, run, user_error

pytest.importorskip("typer")


@pytest.fixture
def glove(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text("cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\nvan 0 0.1 0.9\n")
    return path


def test_inspect_reports_format_rows_dim_and_norms(glove: Path) -> None:
    got = ok_json("vectors", "inspect", glove)
    assert (got["format"], got["rows"], got["dim"]) == ("glove", 4, 3)
    assert math.isclose(got["norm"]["max"], 1.0, rel_tol=1e-6)
    assert got["first_words"] == ["cat", "dog", "car", "van"]
    text = run("vectors", "inspect", glove)
    assert "4 rows x 3 dims" in text.stdout


def test_convert_between_formats_and_to_the_cache(tmp_path: Path, glove: Path) -> None:
    binary = tmp_path / "tiny.bin"
    got = ok_json("vectors", "convert", glove, "-o", binary)
    assert got["output_format"] == "word2vec-binary" and got["rows"] == 4
    back = ok_json("vectors", "inspect", binary)
    assert back["format"] == "word2vec-binary" and back["rows"] == 4
    as_glove = tmp_path / "again.txt"
    ok_json("vectors", "convert", binary, "-o", as_glove, "--to", "glove")
    assert as_glove.read_text().splitlines()[0].split()[0] == "cat"
    cache = tmp_path / "cache"
    got = ok_json("vectors", "convert", glove, "--cache", "--cache-dir", cache)
    assert got["cached"] and any(cache.iterdir())
    user_error(run("vectors", "convert", glove), 2, "-o")
    user_error(run("vectors", "convert", glove, "-o", tmp_path / "x.txt", "--to", "npz"), 2)


def test_neighbors_and_an_unknown_word(glove: Path) -> None:
    got = ok_json("vectors", "neighbors", glove, "cat", "-k", "2")
    assert [n["word"] for n in got["neighbors"]] == ["dog", "van"]
    user_error(run("vectors", "neighbors", glove, "zebra"), 1, "zebra")
    user_error(run("vectors", "neighbors", glove, "cat", "-k", "0"), 2)


def test_evaluate_on_gensim_test_data() -> None:
    vectors = gensim_data("euclidean_vectors.bin")
    pairs, questions = gensim_data("wordsim353.tsv"), gensim_data("questions-words.txt")
    got = ok_json("vectors", "evaluate", vectors, "--similarity", pairs, "--analogies", questions)
    from synthembed.evaluation import evaluate_analogies, evaluate_similarity
    from synthembed.vectors import load_vectors

    v = load_vectors(vectors, cache=False)
    assert got["similarity"]["spearman"] == pytest.approx(evaluate_similarity(v, pairs).spearman)
    assert got["analogies"]["correct"] == evaluate_analogies(v, questions).correct
    user_error(run("vectors", "evaluate", vectors), 2, "--similarity")


def test_malformed_file_fails_with_one_line_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("cat 1 0 0\ndog 0.9 oops 0\n")
    done = run("vectors", "inspect", bad)
    user_error(done, 1, "bad.txt", "line 2")
    user_error(run("vectors", "inspect", tmp_path / "missing.txt"), 2, "missing.txt")
