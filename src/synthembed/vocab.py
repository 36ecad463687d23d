"""Vocabulary: tokens to ids and back, special tokens, OOV policies, growth, JSON files.

Ids are laid out as ``[specials][hash buckets][tokens]``. Hash buckets sit
before the tokens so that :meth:`Vocabulary.add` can append new tokens without
renumbering anything, buckets included.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Literal, overload

import torch

from synthembed._config import Codec
from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_int
from synthembed.encoded_batch import EncodedBatch
from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    ShapeError,
    UnknownTokenError,
)
from synthembed.io import atomic_write, register_savable
from synthembed.token_ops import (
    Token,
    count_tokens_and_types,
    looks_like_text,
    lookup_ids,
    normalize_token,
    stable_hash,
)
from synthembed.token_ops import is_missing as _is_missing
from synthembed.tokenize import TextAsTokenWarning, Tokenizer, get_tokenizer

__all__ = ["EncodedBatch", "Token", "Vocabulary"]

OOVPolicy = Literal["error", "unk", "hash"]
_FORMAT = "synthembed.vocabulary"
_VERSION = 1
_OOV_POLICIES = ("error", "unk", "hash")
_normalize = normalize_token


def _as_index(value: Any) -> int:
    """An id for decode: ints (numpy ints included), never bools or floats."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        value = item()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(
            f"decode expects integer ids; got {type(value).__name__} {value!r}. "
            "Cast float ids with int() or .long() first."
        )
    return value


def _warn_text_as_tokens(strings: list[str], where: str, stacklevel: int) -> None:
    warnings.warn(
        f"{where} got strings that look like sentences (e.g. {strings[0]!r:.60}) and keeps "
        "each whole string as one token. To split text into words pass tokenizer='regex' "
        "(or 'whitespace', a callable, a Hugging Face tokenizer), or pass lists of tokens. "
        "If whole strings are meant (categories), silence this TextAsTokenWarning.",
        TextAsTokenWarning,
        stacklevel=stacklevel,
    )


@register_savable
class Vocabulary:
    """Maps tokens (str or int) to contiguous ids and back.

    Args:
        tokens: the regular tokens, in id order (duplicates are an error). Use
            :meth:`build` to count a corpus instead.
        specials: special tokens placed first, in order. Default ``("<pad>", "<unk>")``.
        pad_token: which special pads batches (``None`` for none). Default ``"<pad>"``
            when it is among the specials, else None.
        unk_token: which special stands for unknown tokens under ``oov="unk"``. Default
            ``"<unk>"`` when it is among the specials, else None.
        oov: what an unknown token becomes: ``"error"`` raises
            :class:`UnknownTokenError`, ``"unk"`` maps to the unknown id, ``"hash"``
            spreads unknown tokens over ``num_oov_buckets`` extra ids by a stable hash.
            Default: ``"unk"`` when there is an unknown token, else ``"error"``.
        num_oov_buckets: number of hash buckets for unseen tokens (required, >= 1, with
            ``oov="hash"``; TensorFlow's name). ``num_buckets=`` is its deprecated old name.
        counts: optional training counts aligned with ``tokens``.
        tokenizer: how :meth:`encode` splits raw text (see :mod:`synthembed.tokenize`):
            ``"regex"``, ``"regex_lower"``, ``"whitespace"``, a callable or a Hugging Face
            tokenizer. None (default): strings are tokens. :meth:`build` sets it.

    Example:
        >>> v = Vocabulary.build([["the", "cat"], ["the", "dog"]])
        >>> v.encode("the"), v.decode(v.encode(["cat", "dog"]))
        (2, ['cat', 'dog'])
        >>> len(v)
        5
    """

    @renamed(num_buckets="num_oov_buckets")
    def __init__(
        self,
        tokens: Iterable[Any] = (),
        *,
        specials: Sequence[str] = ("<pad>", "<unk>"),
        pad_token: str | None = "<pad>",
        unk_token: str | None = "<unk>",
        oov: OOVPolicy | None = None,
        num_oov_buckets: int | None = None,
        counts: Iterable[int] | None = None,
        tokenizer: Any = None,
    ) -> None:
        owner = "Vocabulary"
        if isinstance(specials, str):
            raise ConfigError(
                f"specials must be a sequence of strings; got the string {specials!r}. "
                f"Write specials=({specials!r},)."
            )
        specials = list(specials)
        # The default names apply only when the specials hold them.
        if pad_token == "<pad>" and "<pad>" not in specials:
            pad_token = None
        if unk_token == "<unk>" and "<unk>" not in specials:
            unk_token = None
        if oov is None:
            oov = "unk" if unk_token is not None else "error"
        check_choice(owner, "oov", oov, _OOV_POLICIES)
        for s in specials:
            if not isinstance(s, str):
                raise ConfigError(f"Special tokens must be strings; got {s!r} in {specials!r}.")
        if len(set(specials)) != len(specials):
            raise ConfigError(f"Special tokens must be distinct; got {specials!r}.")
        for role, tok in (("pad_token", pad_token), ("unk_token", unk_token)):
            if tok is not None and tok not in specials:
                raise ConfigError(
                    f"The '{role}' parameter of Vocabulary must be one of the specials "
                    f"{specials!r} or None. Got {tok!r} instead."
                )
        if oov == "unk" and unk_token is None:
            raise ConfigError(
                "oov='unk' needs an unk_token among the specials; pass unk_token= or choose "
                "oov='error' or oov='hash'."
            )
        if oov == "hash":
            check_int(owner, "num_oov_buckets", num_oov_buckets, 1)
        elif num_oov_buckets not in (None, 0):
            raise ConfigError(
                f"num_oov_buckets={num_oov_buckets!r} only applies to oov='hash'; got oov={oov!r}."
            )
        self.tokenizer: Tokenizer | None = None if tokenizer is None else get_tokenizer(tokenizer)
        self._specials: list[str] = specials
        self.pad_token = pad_token
        self.unk_token = unk_token
        self.oov: OOVPolicy = oov
        self.num_oov_buckets: int = int(num_oov_buckets or 0) if oov == "hash" else 0
        self._index_to_key: list[Token] = list(specials)
        self._key_to_index: dict[Token, int] = {s: i for i, s in enumerate(specials)}
        self._counts: list[int] = [0] * len(specials)
        self._int_keys = False
        # Bucket slots have display names but are not keys: a real token may share the name.
        self._index_to_key.extend(f"<hash:{b}>" for b in range(self.num_oov_buckets))
        self._counts.extend([0] * self.num_oov_buckets)
        token_list = [_normalize(t) for t in tokens]
        count_list = [0] * len(token_list) if counts is None else list(counts)
        for c in count_list:
            if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                raise ConfigError(f"Token counts must be non-negative ints; got {c!r}.")
        if len(count_list) != len(token_list):
            raise ConfigError(
                f"counts has {len(count_list)} entries but tokens has {len(token_list)}; "
                "they must align."
            )
        seen: set[Token] = set(specials)
        for t in token_list:
            if t in seen:
                raise ConfigError(f"Duplicate token {t!r} in Vocabulary tokens.")
            seen.add(t)
        self._append(token_list, count_list)

    # ------------------------------------------------------------------ building
    @classmethod
    @renamed(num_buckets="num_oov_buckets")
    def build(
        cls,
        data: Any,
        *,
        tokenizer: Any = None,
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = ("<pad>", "<unk>"),
        pad_token: str | None = "<pad>",
        unk_token: str | None = "<unk>",
        oov: OOVPolicy | None = None,
        num_oov_buckets: int | None = None,
    ) -> Vocabulary:
        """Count a corpus and keep its tokens, most frequent first (ties: first appearance).

        Raw text needs a ``tokenizer``: ``Vocabulary.build(reviews, tokenizer="regex")``
        splits each string into words and punctuation, and the vocabulary keeps the
        tokenizer so that ``vocab.encode(reviews)`` splits them the same way. Without
        one, every string is one token (right for category names and for token lists);
        strings that look like sentences (most hold whitespace) then raise a
        :class:`~synthembed.tokenize.TextAsTokenWarning`, as gensim warns when it gets
        strings where it expects lists of words.

        Args:
            data: an iterable of tokens, of sentences (nested iterables), of texts (with
                ``tokenizer``), a ``collections.Counter`` / mapping of token to count, or a
                pandas Series (list cells count each element; missing values are skipped).
            tokenizer: ``"regex"`` (words and punctuation, :class:`~synthembed.tokenize.
                RegexTokenizer`), ``"regex_lower"``, ``"whitespace"``, a callable
                ``str -> list[str]`` or a Hugging Face ``tokenizers`` object; None keeps
                each string whole.
            min_freq: keep tokens seen at least this often.
            max_size: keep at most this many regular tokens (specials and buckets not counted).

        Example:
            >>> Vocabulary.build(["b", "a", "b"], specials=(), pad_token=None, unk_token=None,
            ...                  oov="error").tokens
            ['b', 'a']
            >>> v = Vocabulary.build(["Great coffee!", "great tea"], tokenizer="regex_lower")
            >>> v.tokens, v.encode("Great tea").tolist()
            (['great', 'coffee', '!', 'tea'], [2, 5])
        """
        tok = None if tokenizer is None else get_tokenizer(tokenizer)
        if isinstance(data, (str, bytes)):
            if tok is None or isinstance(data, bytes):
                raise ShapeError(
                    f"Vocabulary.build got a single string ({data[:40]!r}); pass a list of "
                    "texts with tokenizer='regex', a list of tokens (for example "
                    "text.split()) or a list of such lists."
                )
            data = [data]
        if tok is not None and isinstance(data, Mapping):
            raise ConfigError(
                "Vocabulary.build got token counts (a mapping) and a tokenizer; counts are "
                "already tokens: drop tokenizer=."
            )
        check_int("Vocabulary.build", "min_freq", min_freq, 1)
        check_int("Vocabulary.build", "max_size", max_size, 0, optional=True)
        counter, types = count_tokens_and_types(data, tok)
        if tok is None and not isinstance(data, Mapping):
            spaced = looks_like_text(counter)
            if spaced:
                _warn_text_as_tokens(spaced, "Vocabulary.build", 4)  # via @renamed
        keys, counts = list(counter), list(counter.values())
        # A stable sort by count (reverse keeps stability): ties keep first appearance.
        order = sorted(range(len(keys)), key=counts.__getitem__, reverse=True)
        dropped = {s for s in specials if s in counter}
        if min_freq > 1 or dropped:
            order = [i for i in order if counts[i] >= min_freq and keys[i] not in dropped]
        if max_size is not None:
            order = order[:max_size]
        vocab = cls(
            specials=specials,
            pad_token=pad_token,
            unk_token=unk_token,
            oov=oov,
            num_oov_buckets=num_oov_buckets,
            tokenizer=tok,
        )
        # Counted keys are distinct, normalised and not specials: no per-token re-check.
        tokens = list(map(keys.__getitem__, order))
        every = len(order) == len(keys)  # else the types of the kept tokens are not known
        vocab._append(tokens, list(map(counts.__getitem__, order)), int in types if every else None)
        return vocab

    def _append(self, tokens: list[Token], counts: list[int], ints: bool | None = None) -> None:
        start = len(self._index_to_key)
        self._index_to_key.extend(tokens)
        self._counts.extend(counts)
        self._key_to_index.update(zip(tokens, range(start, start + len(tokens))))
        # Whether a non-int token could be found under an int key (True == 1): see lookup_ids.
        # ``ints``: whether the tokens hold an int, when the caller knows it (build).
        if ints is None:
            ints = int in set(map(type, tokens))
        self._int_keys = self._int_keys or ints

    def add(self, tokens: Any) -> Any:
        """Append new tokens after every existing id; existing ids never change.

        Args:
            tokens: one token, or an iterable of tokens.

        Returns:
            The id of each token (new or existing): an int for one token, else a list.
        """
        single = isinstance(tokens, (str, int)) or not isinstance(tokens, Iterable)
        items = [_normalize(tokens)] if single else [_normalize(t) for t in tokens]
        new: list[Token] = []
        pending: set[Token] = set()
        for t in items:
            if t not in self._key_to_index and t not in pending:
                new.append(t)
                pending.add(t)
        self._append(new, [0] * len(new))
        ids = [self._key_to_index[t] for t in items]
        return ids[0] if single else ids

    # ------------------------------------------------------------------ properties
    @property
    def specials(self) -> list[str]:
        """The special tokens, in id order."""
        return list(self._specials)

    @property
    def pad_id(self) -> int | None:
        """Id of the pad token, or None."""
        return None if self.pad_token is None else self._key_to_index[self.pad_token]

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token, or None."""
        return None if self.unk_token is None else self._key_to_index[self.unk_token]

    @property
    def num_specials(self) -> int:
        """How many special tokens precede the buckets and tokens."""
        return len(self._specials)

    @property
    def num_buckets(self) -> int:
        """Deprecated alias of :attr:`num_oov_buckets`."""
        return self.num_oov_buckets

    @property
    def first_token_id(self) -> int:
        """Id of the first regular token (after specials and hash buckets)."""
        return len(self._specials) + self.num_oov_buckets

    @property
    def tokens(self) -> list[Token]:
        """The regular tokens in id order (specials and buckets excluded)."""
        return self._index_to_key[self.first_token_id :]

    @property
    def index_to_key(self) -> list[Token]:
        """Every id's token or display name, in id order (a copy)."""
        return list(self._index_to_key)

    @property
    def key_to_index(self) -> dict[Token, int]:
        """Every known token's id (a copy; buckets are not keys)."""
        return dict(self._key_to_index)

    @property
    def counts(self) -> Counter[Token]:
        """Training counts of regular tokens (0 for tokens added later)."""
        start = self.first_token_id
        return Counter(dict(zip(self._index_to_key[start:], self._counts[start:])))

    def __len__(self) -> int:
        return len(self._index_to_key)

    def __contains__(self, token: object) -> bool:
        try:
            return _normalize(token) in self._key_to_index
        except ShapeError:
            return False

    def __iter__(self) -> Iterator[Token]:
        return iter(list(self._index_to_key))

    def __getitem__(self, token: Any) -> int:
        return self._encode_one(token)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        extra = f", num_oov_buckets={self.num_oov_buckets}" if self.num_oov_buckets else ""
        if self.tokenizer is not None:
            extra += f", tokenizer={self.tokenizer!r}"
        return f"Vocabulary(size={len(self)}, specials={self._specials!r}, oov={self.oov!r}{extra})"

    # ------------------------------------------------------------------ encoding
    def _encode_one(self, token: Any) -> int:
        if not _is_missing(token):
            key = _normalize(token)
            index = self._key_to_index.get(key)
            if index is not None:
                return index
        else:
            key = token
        if self.oov == "unk":
            return self._key_to_index[self.unk_token]  # type: ignore[index]
        if self.oov == "hash":
            if not _is_missing(token):
                return len(self._specials) + stable_hash(key) % self.num_oov_buckets
            if self.unk_token is not None:
                return self._key_to_index[self.unk_token]
            raise UnknownTokenError(
                f"A missing value ({token!r}) cannot be encoded: this vocabulary has no unknown "
                "token. Drop or fill missing values first, or build it with an '<unk>' special."
            )
        hint = ""
        if isinstance(key, str) and len(self._key_to_index) <= 200_000:
            close = difflib.get_close_matches(
                key, [k for k in self._key_to_index if isinstance(k, str)], n=3
            )
            if close:
                hint = f" Close tokens: {close!r}."
        raise UnknownTokenError(
            f"Token {key!r} is not in the vocabulary ({len(self)} ids) and the OOV policy is "
            f"{self.oov!r}.{hint} Use oov='unk' or oov='hash' to map unknown tokens, or "
            "vocab.add() to grow the vocabulary."
        )

    @overload
    def encode(self, tokens: int) -> int: ...
    @overload
    def encode(self, tokens: str) -> Any: ...  # an id, or with a tokenizer a (L,) tensor
    @overload
    def encode(
        self, tokens: Iterable[Any], *, max_length: int | None = ..., tokenizer: Any = ...
    ) -> Any: ...

    def encode(self, tokens: Any, *, max_length: int | None = None, tokenizer: Any = None) -> Any:
        """Encode one token (-> int), a sequence (-> ``(L,)`` LongTensor) or a batch.

        A batch (a sequence of sequences) returns an :class:`EncodedBatch`, like
        :meth:`encode_batch`. Without a tokenizer a string is always one token. With one
        (``tokenizer=``, or the one :meth:`build` bound), a string is a text: one text
        gives its ``(L,)`` ids, a list of texts an :class:`EncodedBatch`.

        Raises:
            UnknownTokenError: an unknown token under ``oov="error"``.
        """
        tok = self.tokenizer if tokenizer is None else get_tokenizer(tokenizer)
        if tok is not None and isinstance(tokens, str):
            tokens, tok = tok(tokens), None  # one text: its tokens are one sequence
        elif (
            isinstance(tokens, (str, int))
            or not isinstance(tokens, Iterable)
            or getattr(tokens, "ndim", 1) == 0
        ):
            if max_length is not None:
                raise ConfigError("max_length applies to sequences, not to a single token.")
            return self._encode_one(tokens)
        items = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
        if tok is not None and items and all(type(t) is str for t in items):
            return self.encode_batch(tok.batch(items), max_length=max_length)
        nested = [not isinstance(t, (str, bytes)) and isinstance(t, Iterable) for t in items]
        if items and all(nested):
            return self.encode_batch(items, max_length=max_length)
        if any(nested):
            raise ShapeError(
                "encode got a ragged mix of tokens and sequences; pass either one sequence of "
                "tokens or a list of sequences."
            )
        check_int("Vocabulary.encode", "max_length", max_length, 0, optional=True)
        if max_length is not None:
            items = items[:max_length]
        if tok is None:
            spaced = looks_like_text(items[:100])
            if spaced and not any(t in self._key_to_index for t in spaced):
                _warn_text_as_tokens(spaced, "Vocabulary.encode", 3)
        return torch.from_numpy(self._lookup(items))

    def _lookup(self, tokens: list[Any]) -> Any:
        """``(N,)`` int64 array of ids; the checks and OOV policy of :meth:`_encode_one`."""
        return lookup_ids(tokens, self._key_to_index, self._encode_one, int_keys=self._int_keys)

    def encode_batch(
        self,
        sequences: Iterable[Iterable[Any]],
        *,
        max_length: int | None = None,
        padding_value: int | None = None,
    ) -> EncodedBatch:
        """Encode ragged sequences into a padded ``(B, L)`` batch: ids and mask.

        Args:
            sequences: an iterable of token sequences (a string inside is one token
                sequence only if it is itself a list: ``["a b"]`` is one token); with a
                bound :attr:`tokenizer`, an iterable of texts works too.
            max_length: truncate each sequence to its first ``max_length`` tokens.
            padding_value: id used for padding; defaults to the pad id.

        Shape:
            Output ids and mask: ``(B, L)`` with ``L = min(max len, max_length)``;
            lengths: ``(B,)``.
        """
        check_int("Vocabulary.encode_batch", "max_length", max_length, 0, optional=True)
        seqs: list[Any] = sequences if isinstance(sequences, list) else list(sequences)
        if self.tokenizer is not None and seqs and all(type(t) is str for t in seqs):
            seqs = self.tokenizer.batch(seqs)
        if not set(map(type, seqs)) <= {list, tuple}:
            checked = []
            for seq in seqs:
                if isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable):
                    raise ShapeError(
                        f"encode_batch expects a list of token sequences; got the element "
                        f"{seq!r}. Wrap single tokens in a list, or call encode() for one "
                        "sequence."
                    )
                checked.append(list(seq))
            seqs = checked
        if max_length is not None:
            seqs = [seq[:max_length] for seq in seqs]
        lengths = torch.tensor(list(map(len, seqs)), dtype=torch.long)
        flat = list(chain.from_iterable(seqs))
        if padding_value is None:
            padding_value = self.pad_id
        width = int(lengths.max()) if len(seqs) else 0
        if padding_value is None and bool((lengths != width).any()):
            raise ConfigError(
                "This vocabulary has no pad token, so ragged sequences cannot be padded; "
                "pass padding_value= or build the vocabulary with a pad token."
            )
        pad = 0 if padding_value is None else int(padding_value)
        mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        # masked_scatter_ fills the mask's True places in row-major order: each row's tokens.
        # (It took 0.03 s for the benchmark's batches where ids[mask] = ... took 0.4-1 s.)
        ids.masked_scatter_(mask, torch.from_numpy(self._lookup(flat)))
        return EncodedBatch(ids, mask)

    def decode(self, ids: Any, *, strip_padding: bool = True) -> Any:
        """Turn ids back into tokens: an int gives a token, a 1-d sequence a list, 2-d a list of lists.

        Args:
            ids: an int, a sequence of ints, or a 1-d / 2-d integer tensor.
            strip_padding: drop pad ids from sequences (never from a single id).

        Raises:
            InvalidIndexError: an id outside ``[0, len(self))``.
        """
        if isinstance(ids, torch.Tensor):
            if ids.is_floating_point() or ids.dtype == torch.bool:
                raise ShapeError(f"decode expects integer ids; got dtype {ids.dtype}.")
            if ids.dim() > 2:
                raise ShapeError(f"decode takes 0-d, 1-d or 2-d ids; got shape {tuple(ids.shape)}.")
            ids = ids.tolist()
        if isinstance(ids, bool):
            raise ShapeError("decode expects integer ids; got a bool.")
        if isinstance(ids, int) or (hasattr(ids, "ndim") and getattr(ids, "ndim", 1) == 0):
            return self._decode_one(_as_index(ids))
        items = list(ids)
        if items and all(isinstance(x, Iterable) for x in items):
            return [self.decode(x, strip_padding=strip_padding) for x in items]
        pad = self.pad_id if strip_padding else None
        indices = [_as_index(i) for i in items]
        return [self._decode_one(i) for i in indices if pad is None or i != pad]

    def _decode_one(self, index: int) -> Token:
        if not 0 <= index < len(self._index_to_key):
            raise InvalidIndexError(
                f"Id {index} is outside the vocabulary's valid range [0, {len(self) - 1}]."
            )
        return self._index_to_key[index]

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description that :meth:`from_dict` turns back into an equal vocabulary."""
        start = self.first_token_id
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "specials": self.specials,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "oov": self.oov,
            # The JSON key keeps its old name, so files written before the rename load.
            "num_buckets": self.num_oov_buckets,
            "tokens": self._index_to_key[start:],
            "counts": self._counts[start:],
        }
        # Only a named tokenizer is saved (a callable is not); files without one load as before.
        name = None if self.tokenizer is None else self.tokenizer.name
        if name is not None:
            payload["tokenizer"] = name
        payload["checksum"] = _payload_checksum(payload)
        return payload

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "vocabulary data") -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_dict` output, validating every field first."""
        if not isinstance(data, dict):
            raise FileFormatError(f"{source} must be a JSON object; got {type(data).__name__}.")
        if data.get("format") != _FORMAT:
            raise FileFormatError(
                f"{source} is not a synthembed vocabulary (format {data.get('format')!r})."
            )
        version = data.get("version")
        if version != _VERSION:
            raise FileFormatError(
                f"{source} has vocabulary format version {version!r}; this synthembed reads "
                f"version {_VERSION}. Upgrade synthembed to read newer files."
            )
        required = {"specials", "pad_token", "unk_token", "oov", "num_buckets", "tokens", "counts"}
        missing = sorted(required - set(data))
        if missing:
            raise FileFormatError(f"{source} lacks the fields {missing}.")
        if "checksum" in data and data["checksum"] != _payload_checksum(data):
            raise FileFormatError(
                f"{source} failed its checksum: its contents were changed after it was saved."
            )
        tokens, counts = data["tokens"], data["counts"]
        if not isinstance(tokens, list) or not isinstance(counts, list):
            raise FileFormatError(f"{source}: 'tokens' and 'counts' must be lists.")
        for t in tokens:
            if isinstance(t, bool) or not isinstance(t, (str, int)):
                raise FileFormatError(f"{source}: token {t!r} is not a string or integer.")
        if not isinstance(data["specials"], list):
            raise FileFormatError(f"{source}: 'specials' must be a list of strings.")
        buckets = data["num_buckets"]  # the file keeps the key num_oov_buckets had before
        if data["oov"] == "hash" and (
            isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1
        ):
            raise FileFormatError(
                f"{source}: 'num_buckets' (the OOV hash buckets) must be an int >= 1 with "
                f"oov='hash'; got {buckets!r}."
            )
        try:
            return cls(
                tokens,
                specials=data["specials"],
                pad_token=data["pad_token"],
                unk_token=data["unk_token"],
                oov=data["oov"],
                num_oov_buckets=data["num_buckets"] or None,
                counts=counts,
                tokenizer=data.get("tokenizer"),
            )
        except (ConfigError, ShapeError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{source} is invalid: {exc}") from exc

    def get_config(self) -> dict[str, Any]:
        """:meth:`to_dict`, the configuration :func:`synthembed.save` writes."""
        return self.to_dict()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Vocabulary:
        """:meth:`from_dict`, how :func:`synthembed.load` rebuilds a saved vocabulary."""
        return cls.from_dict(config)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (temp file, fsync, rename).

        :func:`synthembed.save` writes it in the one format of every saved object
        (a safetensors file whose metadata holds this JSON); both load back equal.
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep them as \\uXXXX escapes
            data = json.dumps(self.to_dict(), ensure_ascii=True).encode("ascii")
        with atomic_write(path, "wb") as handle:
            handle.write(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary JSON file; a malformed or tampered file raises FileFormatError."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise FileFormatError(f"'{p}' is not valid vocabulary JSON: {exc}.") from exc
        return cls.from_dict(data, source=f"'{p}'")


def _payload_checksum(payload: Mapping[str, Any]) -> str:
    body = {k: v for k, v in payload.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


#: How configurations write a bound vocabulary (see :mod:`synthembed._config`).
VOCABULARY = Codec(lambda v: v.to_dict(), lambda data, owner: Vocabulary.from_dict(data))
