"""Tokenizers: how raw text becomes tokens for :class:`~synthembed.vocab.Vocabulary`.

A tokenizer is anything :func:`get_tokenizer` accepts:

- ``"regex"``: :class:`RegexTokenizer`, the default for text. A token is a run of
  Unicode word characters (letters, digits, underscore: ``\\w+``), or one character
  that is neither a word character nor whitespace (punctuation and symbols, each on
  its own). Whitespace only separates. ``"regex_lower"`` lowercases first.
  ``"don't stop!"`` -> ``["don", "'", "t", "stop", "!"]``.
- ``"whitespace"``: ``str.split()``, runs of whitespace separate, punctuation stays
  attached (what ``text.split()`` does, and what gensim's corpora assume).
- a callable ``str -> list[str]`` (spaCy's ``nlp.tokenizer`` wrapped, nltk's
  ``word_tokenize``, ...);
- a Hugging Face ``tokenizers.Tokenizer`` (subword pieces, special tokens left out)
  or a ``tokenizers`` pre-tokenizer (words, as the model would split them). The
  ``tokenizers`` package is needed only for these.

Named tokenizers are saved with the vocabulary; callables and Hugging Face objects
are not (pass them again after loading).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from synthembed.errors import ConfigError

__all__ = [
    "TOKENIZER_NAMES",
    "RegexTokenizer",
    "TextAsTokenWarning",
    "Tokenizer",
    "WhitespaceTokenizer",
    "get_tokenizer",
]


class TextAsTokenWarning(UserWarning):
    """Strings that look like sentences were kept whole, each as one token.

    Silence it with ``warnings.simplefilter("ignore", TextAsTokenWarning)`` when whole
    strings are meant (category names such as ``"New York"``).
    """


@runtime_checkable
class Tokenizer(Protocol):
    """Splits texts into tokens; :attr:`name` is set when it can be saved by name."""

    name: str | None

    def __call__(self, text: str) -> list[str]: ...

    def batch(self, texts: Iterable[str]) -> list[list[str]]: ...


class RegexTokenizer:
    """Word runs and single punctuation marks: ``re.findall(r"\\w+|[^\\w\\s]", text)``.

    Args:
        lowercase: lowercase the text first (``str.lower``).

    Example:
        >>> RegexTokenizer()("Great coffee, 10/10!")
        ['Great', 'coffee', ',', '10', '/', '10', '!']
        >>> RegexTokenizer(lowercase=True)("Café au lait")
        ['café', 'au', 'lait']
    """

    pattern = re.compile(r"\w+|[^\w\s]")

    def __init__(self, *, lowercase: bool = False) -> None:
        self.lowercase = bool(lowercase)
        self.name: str | None = "regex_lower" if self.lowercase else "regex"

    def __call__(self, text: str) -> list[str]:
        return self.pattern.findall(text.lower() if self.lowercase else text)

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        """One token list per text."""
        findall = self.pattern.findall
        if self.lowercase:
            return [findall(t.lower()) for t in texts]
        return [findall(t) for t in texts]

    def __repr__(self) -> str:
        return f"RegexTokenizer(lowercase={self.lowercase})"


class WhitespaceTokenizer:
    """``str.split()``: runs of whitespace separate tokens; nothing else does.

    Example:
        >>> WhitespaceTokenizer()("Great coffee, 10/10!")
        ['Great', 'coffee,', '10/10!']
    """

    name: str | None = "whitespace"

    def __call__(self, text: str) -> list[str]:
        return text.split()

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        """One token list per text."""
        return [t.split() for t in texts]

    def __repr__(self) -> str:
        return "WhitespaceTokenizer()"


class _CallableTokenizer:
    """A user's function ``str -> list[str]``, checked on every text."""

    name: str | None = None

    def __init__(self, function: Callable[[str], Any]) -> None:
        self.function = function

    def __call__(self, text: str) -> list[str]:
        tokens = self.function(text)
        if isinstance(tokens, str) or not isinstance(tokens, Iterable):
            raise ConfigError(
                f"A tokenizer must return a list of tokens; {self.function!r} returned "
                f"{type(tokens).__name__} {tokens!r:.60} for {text!r:.40}."
            )
        return [str(t) for t in tokens]

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        return [self(t) for t in texts]

    def __repr__(self) -> str:
        return f"Tokenizer({self.function!r})"


class _HuggingFaceTokenizer:
    """A ``tokenizers.Tokenizer`` (pieces, no special tokens) or a pre-tokenizer (words)."""

    name: str | None = None

    def __init__(self, model: Any, kind: str) -> None:
        self.model, self.kind = model, kind

    def __call__(self, text: str) -> list[str]:
        return self.batch([text])[0]

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        items = list(texts)
        if self.kind == "pre":
            return [[w for w, _ in self.model.pre_tokenize_str(t)] for t in items]
        # encode_batch runs in parallel in Rust.
        return [e.tokens for e in self.model.encode_batch(items, add_special_tokens=False)]

    def __repr__(self) -> str:
        return f"Tokenizer({type(self.model).__name__}, huggingface)"


_NAMED: dict[str, Callable[[], Tokenizer]] = {
    "regex": RegexTokenizer,
    "regex_lower": lambda: RegexTokenizer(lowercase=True),
    "whitespace": WhitespaceTokenizer,
}
#: The names :func:`get_tokenizer` knows.
TOKENIZER_NAMES = tuple(_NAMED)


def get_tokenizer(spec: Any) -> Tokenizer:
    """The tokenizer for ``spec``: a name in :data:`TOKENIZER_NAMES`, a :class:`Tokenizer`,
    a Hugging Face ``tokenizers`` object, or a callable ``str -> list[str]``.

    Raises:
        ConfigError: an unknown name or an object that cannot tokenize.

    Example:
        >>> get_tokenizer("whitespace")("a b,c")
        ['a', 'b,c']
    """
    if isinstance(spec, str):
        make = _NAMED.get(spec)
        if make is None:
            raise ConfigError(
                f"Unknown tokenizer {spec!r}; the named ones are {list(TOKENIZER_NAMES)} "
                "(or pass a callable or a Hugging Face tokenizers object)."
            )
        return make()
    if isinstance(spec, Tokenizer):
        return spec
    module = type(spec).__module__ or ""
    if module.startswith("tokenizers"):
        if callable(getattr(spec, "encode_batch", None)):
            return _HuggingFaceTokenizer(spec, "model")
        if callable(getattr(spec, "pre_tokenize_str", None)):
            return _HuggingFaceTokenizer(spec, "pre")
    if callable(spec):
        return _CallableTokenizer(spec)
    raise ConfigError(
        f"tokenizer must be one of {list(TOKENIZER_NAMES)}, a callable str -> list[str], or a "
        f"Hugging Face tokenizers object; got {type(spec).__name__} {spec!r:.60}."
    )
