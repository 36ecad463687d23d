"""Intrinsic evaluation of word vectors: analogies (3CosAdd) and word-similarity benchmarks.

The numbers match gensim's ``evaluate_word_analogies`` and ``evaluate_word_pairs``
on the same vectors; correlations and their p-values come from scipy. Each result
also lists what gensim users look at: every question with its guess, every pair
with its cosine, and the out-of-vocabulary share as a percent (``oov_percent``,
gensim's third return value) and as a fraction (``oov_fraction``).

Every function takes a :class:`~synthembed.vectors.Vectors` or a layer with a
bound vocabulary (a trained :class:`~synthembed.Embedding` built with ``vocab=``),
whose specials (``<pad>``, ``<unk>``...) are left out.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthembed._validation import check_int, require
from synthembed.errors import ConfigError, FileFormatError
from synthembed.search import Neighbours, WordVectors, bf16_rows, check_vectors, search

__all__ = [
    "AnalogyQuestion",
    "AnalogyResult",
    "SimilarityResult",
    "analogy",
    "evaluate_analogies",
    "evaluate_similarity",
]


def _lookup_table(vectors: WordVectors, limit: int, case_insensitive: bool) -> dict[str, int]:
    """Word -> row over the first ``limit`` rows; case-folded like gensim (the first row wins)."""
    words = vectors.index_to_key[:limit]
    if not case_insensitive:
        return {w: i for i, w in enumerate(words)}
    table: dict[str, int] = {}
    for i in range(len(words) - 1, -1, -1):
        table[words[i].upper()] = i
    return table


def _fold(word: str, case_insensitive: bool) -> str:
    return word.upper() if case_insensitive else word


def analogy(vectors: Any, a: str, b: str, c: str, k: int = 1) -> Neighbours:
    """Solve ``a : b :: c : ?`` by 3CosAdd: the words nearest ``b - a + c`` (unit vectors).

    ``a``, ``b`` and ``c`` are never answers, as in gensim and the original word2vec.

    Returns:
        ``k`` pairs ``(word, cosine)``, best first.

    Example:
        >>> from synthembed.vectors import Vectors
        >>> v = Vectors(["man", "king", "woman", "queen", "apple"], torch.tensor(
        ...     [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]))
        >>> analogy(v, "man", "king", "woman")[0][0]
        'queen'
    """
    vectors = check_vectors(vectors, "analogy")
    check_int("analogy", "k", k, 1)
    unit = vectors.unit_vectors()
    rows = [vectors.index(w) for w in (a, b, c)]
    query = (unit[rows[1]] - unit[rows[0]] + unit[rows[2]]).unsqueeze(0)
    query = query / query.norm().clamp_min(1e-12)
    kk = min(k, len(vectors) - len(set(rows)))
    if kk < 1:
        raise ConfigError("Too few vectors: every word is part of the question.")
    scores, ids = search(unit, query, kk, exclude=torch.tensor([rows]))
    return [
        (vectors.index_to_key[i], float(s)) for i, s in zip(ids[0].tolist(), scores[0].tolist())
    ]


@dataclass(frozen=True)
class AnalogyQuestion:
    """One analogy question ``a : b :: c : expected`` and the model's answer.

    Attributes:
        section: the ``: section`` it belongs to.
        words: ``(a, b, c, expected)`` as written in the file.
        guess: the answer (a word of the vectors), or None for a skipped question.
        correct: whether ``guess`` is ``expected`` (case-folded with ``case_insensitive``).
    """

    section: str
    words: tuple[str, str, str, str]
    guess: str | None
    correct: bool


@dataclass(frozen=True)
class AnalogyResult:
    """Accuracy on analogy questions.

    Attributes:
        accuracy: correct / answered (0 when none answered), gensim's score.
        correct: questions answered right.
        answered: questions whose four words all had vectors.
        skipped: questions with a word that had no vector.
        sections: per section name, ``(correct, answered)``.
        questions: every question in file order, answered and skipped (``guess=None``):
            what gensim's per-section ``correct`` / ``incorrect`` lists hold.
    """

    accuracy: float
    correct: int
    answered: int
    skipped: int
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)
    questions: tuple[AnalogyQuestion, ...] = field(default=(), repr=False)

    @property
    def oov_percent(self) -> float:
        """Share of questions skipped for a missing word, in percent (0 to 100)."""
        total = self.answered + self.skipped
        return 100.0 * self.skipped / total if total else 0.0

    def incorrect(self) -> list[AnalogyQuestion]:
        """The answered questions that were answered wrong, in file order."""
        return [q for q in self.questions if q.guess is not None and not q.correct]


def _read_lines(source: Any, what: str) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        p = Path(os.fspath(source))
        if not p.is_file():
            raise FileNotFoundError(f"No {what} file at '{p}'.")
        return p.read_text(encoding="utf-8").splitlines()
    return [str(line) for line in source]


def evaluate_analogies(
    vectors: Any,
    questions: str | os.PathLike[str] | Iterable[str],
    *,
    restrict_vocab: int | None = 300_000,
    case_insensitive: bool = True,
    chunk_size: int = 256,
) -> AnalogyResult:
    """Accuracy on analogy questions in the word2vec ``questions-words.txt`` format.

    ``: section`` lines start a section; each other line is ``a b c d``, asking
    ``a : b :: c : ?`` with answer ``d``. Like gensim's ``evaluate_word_analogies``, only
    the first ``restrict_vocab`` words are searched, questions with a word outside
    them are skipped, and with ``case_insensitive`` words match whatever their case
    (the most frequent variant wins) and the case variants of ``a``, ``b`` and ``c`` are
    never answers. The numbers match gensim's on the same vectors.

    Args:
        vectors: the vectors to evaluate.
        questions: a path, or the lines themselves.
        restrict_vocab: search only the first N rows (files are usually by frequency).
        case_insensitive: match words ignoring case, as gensim does by default.
        chunk_size: questions scored per matrix product.

    Raises:
        FileFormatError: a question line without exactly four words.

    Example:
        >>> from synthembed.vectors import Vectors
        >>> v = Vectors(["man", "king", "woman", "queen"], torch.tensor(
        ...     [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
        >>> evaluate_analogies(v, [": royal", "man king woman queen"]).accuracy
        1.0
    """
    vectors = check_vectors(vectors, "evaluate_analogies")
    check_int("evaluate_analogies", "restrict_vocab", restrict_vocab, 1, optional=True)
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    table = _lookup_table(vectors, limit, case_insensitive)
    section = "default"
    quads: list[list[int]] = []
    names: list[str] = []
    asked_words: list[tuple[str, str, str, str]] = []
    skipped_at: list[tuple[int, str, tuple[str, str, str, str]]] = []  # (position, section, words)
    skipped = 0
    for number, line in enumerate(_read_lines(questions, "analogy questions"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith(":"):
            section = text[1:].strip()
            continue
        parts = text.split()
        if len(parts) != 4:
            raise FileFormatError(
                f"Analogy question line {number} must have 4 words; got {len(parts)}: {text!r}."
            )
        rows = [table.get(_fold(w, case_insensitive)) for w in parts]
        words4 = (parts[0], parts[1], parts[2], parts[3])
        if any(r is None for r in rows):
            skipped += 1
            skipped_at.append((len(quads) + len(skipped_at), section, words4))
            continue
        quads.append(rows)  # type: ignore[arg-type]
        names.append(section)
        asked_words.append(words4)
    sections: dict[str, list[int]] = {}
    correct_total = 0
    hits: list[bool] = []
    guesses: list[str | None] = []
    if quads:
        unit = vectors.unit_vectors()[:limit]
        q = torch.tensor(quads, dtype=torch.long)  # (N, 4)
        query = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]  # (N, D)
        query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
        # Like gensim: take the top 5 (the question words excluded) and answer with the
        # first whose case-folded form is not one of the question's words.
        _, top = search(
            unit,
            query,
            min(5, limit - 3),
            exclude=q[:, :3],
            chunk_size=chunk_size,
            unit_bf16=bf16_rows(vectors, len(quads), limit),
        )
        words = vectors.index_to_key
        for question, candidates in zip(quads, top.tolist()):
            asked = {_fold(words[r], case_insensitive) for r in question[:3]}
            answer = _fold(words[question[3]], case_insensitive)
            guess = next(
                (g for g in candidates if _fold(words[g], case_insensitive) not in asked), None
            )
            hits.append(guess is not None and _fold(words[guess], case_insensitive) == answer)
            guesses.append(None if guess is None else words[guess])
        for name, hit in zip(names, hits):
            counts = sections.setdefault(name, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
        correct_total = int(sum(hits))
    answered = len(quads)
    records = [
        AnalogyQuestion(name, w, g, h) for name, w, g, h in zip(names, asked_words, guesses, hits)
    ]
    for position, name, w in skipped_at:
        records.insert(position, AnalogyQuestion(name, w, None, False))
    return AnalogyResult(
        accuracy=correct_total / answered if answered else 0.0,
        correct=correct_total,
        answered=answered,
        skipped=skipped,
        sections={k: (v[0], v[1]) for k, v in sections.items()},
        questions=tuple(records),
    )


# ---------------------------------------------------------------------------- similarity
@dataclass(frozen=True)
class SimilarityResult:
    """Agreement of cosine similarities with human similarity scores.

    Attributes:
        spearman: Spearman rank correlation over the pairs used (nan if fewer than 2).
        pearson: Pearson correlation over the same pairs.
        pairs_used: pairs whose two words had vectors.
        pairs_skipped: pairs with a word that had no vector.
        spearman_pvalue: scipy's two-sided p-value of ``spearman`` (nan when it is nan).
        pearson_pvalue: scipy's two-sided p-value of ``pearson``.
        pairs: the pairs used, ``(word1, word2, human score, cosine)``, in file order.
        oov_pairs: the pairs skipped, ``(word1, word2, human score)``.

    gensim's ``evaluate_word_pairs`` returns ``((pearson, p), (spearman, p), oov%)``:
    here ``(pearson, pearson_pvalue)``, ``(spearman, spearman_pvalue)``, :attr:`oov_percent`.
    """

    spearman: float
    pearson: float
    pairs_used: int
    pairs_skipped: int
    spearman_pvalue: float = float("nan")
    pearson_pvalue: float = float("nan")
    pairs: tuple[tuple[str, str, float, float], ...] = field(default=(), repr=False)
    oov_pairs: tuple[tuple[str, str, float], ...] = field(default=(), repr=False)

    @property
    def oov_fraction(self) -> float:
        """Share of pairs skipped for a missing word, as a fraction (0 to 1)."""
        total = self.pairs_used + self.pairs_skipped
        return self.pairs_skipped / total if total else 0.0

    @property
    def oov_percent(self) -> float:
        """Share of pairs skipped for a missing word, in percent (gensim's ``oov_ratio``)."""
        return 100.0 * self.oov_fraction

    @property
    def oov_ratio(self) -> float:
        """Deprecated: a fraction where gensim's ``oov_ratio`` is a percent; use
        :attr:`oov_fraction` or :attr:`oov_percent`."""
        warnings.warn(
            "SimilarityResult.oov_ratio is a fraction (0-1), while gensim's oov_ratio is a "
            "percent; use oov_fraction or oov_percent. oov_ratio goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.oov_fraction


def _correlations(model: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    """Spearman, its p-value, Pearson, its p-value; nan when a side is constant or too short."""
    nan = float("nan")
    if len(model) < 2 or np.ptp(model) == 0 or np.ptp(truth) == 0:
        return nan, nan, nan, nan  # scipy would warn and return nan
    stats = require("scipy.stats", "vectors", "evaluate_similarity")
    spearman = stats.spearmanr(model, truth)  # average ranks for ties
    pearson = stats.pearsonr(model, truth)
    return (
        float(spearman.statistic),
        float(spearman.pvalue),
        float(pearson.statistic),
        float(pearson.pvalue),
    )


def evaluate_similarity(
    vectors: Any,
    pairs: str | os.PathLike[str] | Iterable[Sequence[Any]],
    *,
    case_insensitive: bool = True,
    restrict_vocab: int | None = 300_000,
    delimiter: str = "\t",
) -> SimilarityResult:
    """Spearman (and Pearson) correlation of cosine similarity with human judgements.

    Args:
        vectors: the vectors to evaluate.
        pairs: a file in the WordSim-353 / SimLex-999 layout of gensim's test data
            (``word1<TAB>word2<TAB>score`` lines, ``#`` comments), or ``(word1, word2,
            score)`` triples.
        case_insensitive: match words ignoring case (the most frequent variant wins), as
            gensim's ``evaluate_word_pairs`` does by default.
        restrict_vocab: look words up among the first N rows only.
        delimiter: field separator of a file.

    Raises:
        FileFormatError: a file line without a word pair and a numeric score.

    Example:
        >>> from synthembed.vectors import Vectors
        >>> v = Vectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
        >>> evaluate_similarity(v, [("a", "b", 9.0), ("a", "c", 1.0), ("b", "c", 2.0)]).spearman
        1.0
    """
    vectors = check_vectors(vectors, "evaluate_similarity")
    check_int("evaluate_similarity", "restrict_vocab", restrict_vocab, 1, optional=True)
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    table = _lookup_table(vectors, limit, case_insensitive)
    triples: list[tuple[str, str, float]] = []
    if isinstance(pairs, (str, os.PathLike)):
        for number, line in enumerate(_read_lines(pairs, "word-pair"), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\r\n").split(delimiter)
            try:
                triples.append((parts[0], parts[1], float(parts[2])))
            except (IndexError, ValueError):
                raise FileFormatError(
                    f"Word-pair line {number} must be 'word1{delimiter!r}word2{delimiter!r}score'; "
                    f"got {line!r}."
                ) from None
    else:
        for item in pairs:
            if isinstance(item, str) or len(item) != 3:
                raise ConfigError(f"Each pair must be (word1, word2, score); got {item!r}.")
            triples.append((str(item[0]), str(item[1]), float(item[2])))
    left: list[int] = []
    right: list[int] = []
    used: list[tuple[str, str, float]] = []
    oov: list[tuple[str, str, float]] = []
    for a, b, score in triples:
        ra = table.get(_fold(a, case_insensitive))
        rb = table.get(_fold(b, case_insensitive))
        if ra is None or rb is None:
            oov.append((a, b, score))
            continue
        left.append(ra)
        right.append(rb)
        used.append((a, b, score))
    if not left:
        nan = float("nan")
        return SimilarityResult(nan, nan, 0, len(oov), oov_pairs=tuple(oov))
    unit = vectors.unit_vectors()
    model = (unit[torch.tensor(left)] * unit[torch.tensor(right)]).sum(dim=1).double().numpy()
    truth = np.asarray([score for _, _, score in used], dtype=np.float64)
    spearman, spearman_p, pearson, pearson_p = _correlations(model, truth)
    return SimilarityResult(
        spearman=spearman,
        pearson=pearson,
        pairs_used=len(left),
        pairs_skipped=len(oov),
        spearman_pvalue=spearman_p,
        pearson_pvalue=pearson_p,
        pairs=tuple((a, b, h, float(m)) for (a, b, h), m in zip(used, model.tolist())),
        oov_pairs=tuple(oov),
    )
