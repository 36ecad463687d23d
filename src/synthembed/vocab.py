"""Vocabulary: tokens to ids and back, special tokens, OOV policies, growth, JSON files.

Ids are laid out as ``[specials][hash buckets][tokens]``. Hash buckets sit
before the tokens so that :meth:`Vocabulary.add` can append new tokens without
renumbering anything, buckets included.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, overload

import torch

from synthembed._config import Codec
from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_int
from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    ShapeError,
    UnknownTokenError,
)
from synthembed.io import atomic_write, register_savable

__all__ = ["EncodedBatch", "Token", "Vocabulary"]

Token = Union[str, int]  # noqa: UP007 (a runtime alias, valid on Python 3.10)
OOVPolicy = Literal["error", "unk", "hash"]
_FORMAT = "synthembed.vocabulary"
_VERSION = 1
_OOV_POLICIES = ("error", "unk", "hash")


@dataclass(frozen=True)
class EncodedBatch:
    """A padded batch of ragged sequences.

    Attributes:
        ids: ``(B, L)`` long tensor, padded with the pad id.
        lengths: ``(B,)`` long tensor, the length of each sequence after truncation.
        mask: ``(B, L)`` bool tensor, True on real tokens.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor


def _is_missing(token: Any) -> bool:
    if token is None:
        return True
    try:
        return bool(isinstance(token, float) and math.isnan(token))
    except TypeError:
        return False


def _normalize(token: Any) -> Token:
    """Accept str and int tokens (numpy/pandas integers included); reject the rest clearly."""
    if isinstance(token, str):
        return str(token)  # numpy.str_ and other subclasses become plain str
    if isinstance(token, bool):
        raise ShapeError(
            f"Vocabulary tokens must be str or int; got the bool {token!r}. "
            "Convert booleans to strings ('True'/'False') first."
        )
    if isinstance(token, int):
        return int(token)
    item = getattr(token, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(token, "ndim", 0) == 0:
        value = item()
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    if isinstance(token, float) and token.is_integer():
        return int(token)
    raise ShapeError(
        f"Vocabulary tokens must be str or int; got {type(token).__name__} {token!r}. "
        "Convert them to strings first."
    )


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


def _stable_hash(token: Token) -> int:
    """A hash that is the same in every process and on every machine (never Python's hash)."""
    tag = (
        b"s:" + token.encode("utf-8", "surrogatepass")
        if isinstance(token, str)
        else b"i:" + str(token).encode()
    )
    return int.from_bytes(hashlib.blake2b(tag, digest_size=8).digest(), "little")


def _iter_tokens(data: Any) -> Iterator[Any]:
    """Flatten tokens, sentences (nested iterables) and pandas Series with list cells."""
    values = data.tolist() if hasattr(data, "tolist") and not isinstance(data, str) else data
    for item in values:
        if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
            yield item
        else:
            yield from _iter_tokens(item)


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
        self._specials: list[str] = specials
        self.pad_token = pad_token
        self.unk_token = unk_token
        self.oov: OOVPolicy = oov
        self.num_oov_buckets: int = int(num_oov_buckets or 0) if oov == "hash" else 0
        self._index_to_key: list[Token] = list(specials)
        self._key_to_index: dict[Token, int] = {s: i for i, s in enumerate(specials)}
        self._counts: list[int] = [0] * len(specials)
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
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = ("<pad>", "<unk>"),
        pad_token: str | None = "<pad>",
        unk_token: str | None = "<unk>",
        oov: OOVPolicy | None = None,
        num_oov_buckets: int | None = None,
    ) -> Vocabulary:
        """Count a corpus and keep its tokens, most frequent first (ties: first appearance).

        Args:
            data: an iterable of tokens, of sentences (nested iterables), a
                ``collections.Counter`` / mapping of token to count, or a pandas
                Series (list cells count each element; missing values are skipped).
            min_freq: keep tokens seen at least this often.
            max_size: keep at most this many regular tokens (specials and buckets not counted).

        Example:
            >>> Vocabulary.build(["b", "a", "b"], specials=(), pad_token=None, unk_token=None,
            ...                  oov="error").tokens
            ['b', 'a']
        """
        if isinstance(data, (str, bytes)):
            raise ShapeError(
                f"Vocabulary.build got a single string ({data[:40]!r}); pass a list of tokens "
                "(for example text.split()) or a list of such lists."
            )
        check_int("Vocabulary.build", "min_freq", min_freq, 1)
        check_int("Vocabulary.build", "max_size", max_size, 0, optional=True)
        counter: Counter[Token] = Counter()
        if isinstance(data, Mapping):
            for tok, c in data.items():
                check_int("Vocabulary.build", f"count of {tok!r}", c, 0)
                counter[_normalize(tok)] += int(c)
        else:
            for tok in _iter_tokens(data):
                if not _is_missing(tok):
                    counter[_normalize(tok)] += 1
        special_set = set(specials)
        # Counter keeps first-appearance order; a stable sort by -count keeps it on ties.
        ranked = sorted(
            ((t, c) for t, c in counter.items() if c >= min_freq and t not in special_set),
            key=lambda tc: -tc[1],
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls(
            [t for t, _ in ranked],
            specials=specials,
            pad_token=pad_token,
            unk_token=unk_token,
            oov=oov,
            num_oov_buckets=num_oov_buckets,
            counts=[c for _, c in ranked],
        )

    def _append(self, tokens: list[Token], counts: list[int]) -> None:
        start = len(self._index_to_key)
        self._index_to_key.extend(tokens)
        self._counts.extend(counts)
        for offset, t in enumerate(tokens):
            self._key_to_index[t] = start + offset

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
                return len(self._specials) + _stable_hash(key) % self.num_oov_buckets
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
    def encode(self, tokens: str | int) -> int: ...
    @overload
    def encode(self, tokens: Iterable[Any], *, max_length: int | None = ...) -> Any: ...

    def encode(self, tokens: Any, *, max_length: int | None = None) -> Any:
        """Encode one token (-> int), a sequence (-> ``(L,)`` LongTensor) or a batch.

        A batch (a sequence of sequences) returns an :class:`EncodedBatch`, like
        :meth:`encode_batch`. A string is always one token.

        Raises:
            UnknownTokenError: an unknown token under ``oov="error"``.
        """
        if (
            isinstance(tokens, (str, int))
            or not isinstance(tokens, Iterable)
            or getattr(tokens, "ndim", 1) == 0
        ):
            if max_length is not None:
                raise ConfigError("max_length applies to sequences, not to a single token.")
            return self._encode_one(tokens)
        items = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
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
        return torch.tensor([self._encode_one(t) for t in items], dtype=torch.long)

    def encode_batch(
        self,
        sequences: Iterable[Iterable[Any]],
        *,
        max_length: int | None = None,
        padding_value: int | None = None,
    ) -> EncodedBatch:
        """Encode ragged sequences into a padded ``(B, L)`` batch with lengths and mask.

        Args:
            sequences: an iterable of token sequences (a string inside is one token
                sequence only if it is itself a list: ``["a b"]`` is one token).
            max_length: truncate each sequence to its first ``max_length`` tokens.
            padding_value: id used for padding; defaults to the pad id.

        Shape:
            Output ids and mask: ``(B, L)`` with ``L = min(max len, max_length)``;
            lengths: ``(B,)``.
        """
        check_int("Vocabulary.encode_batch", "max_length", max_length, 0, optional=True)
        rows: list[list[int]] = []
        for seq in sequences:
            if isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable):
                raise ShapeError(
                    f"encode_batch expects a list of token sequences; got the element {seq!r}. "
                    "Wrap single tokens in a list, or call encode() for one sequence."
                )
            items = list(seq)
            if max_length is not None:
                items = items[:max_length]
            rows.append([self._encode_one(t) for t in items])
        if padding_value is None:
            padding_value = self.pad_id
        width = max((len(r) for r in rows), default=0)
        if padding_value is None and any(len(r) != width for r in rows):
            raise ConfigError(
                "This vocabulary has no pad token, so ragged sequences cannot be padded; "
                "pass padding_value= or build the vocabulary with a pad token."
            )
        pad = 0 if padding_value is None else int(padding_value)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        return EncodedBatch(ids=ids, lengths=lengths, mask=mask)

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
