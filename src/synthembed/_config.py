"""One declaration of what rebuilds an object; ``get_config``, ``from_config`` and
``extra_repr`` derive from it.

A class lists its :class:`Option` s once, in ``config_options``; each names a
constructor argument and where its value lives on the object. Adding an option
to a layer then means adding one line here and one argument to ``__init__``.
The JSON form is plain: dtypes are written by name (``"float32"``) and
vocabularies as :meth:`~synthembed.Vocabulary.to_dict` data.

Example:
    >>> class Box(Configurable):
    ...     config_options = (Option("size", positional=True), Option("label"))
    ...     def __init__(self, size, label=None):
    ...         self.size, self.label = size, label
    ...     def __repr__(self):
    ...         return f"Box({self.extra_repr()})"
    >>> Box(3, label="a").get_config()
    {'size': 3, 'label': 'a'}
    >>> Box.from_config({"size": 2})
    Box(2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from synthembed.errors import ConfigError

__all__ = ["DTYPE", "Codec", "Configurable", "Option"]

C = TypeVar("C", bound="Configurable")
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Codec:
    """How one kind of value is written to JSON and read back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any, str], Any]  # (data, owner class name) -> value


def _decode_dtype(name: Any, owner: str) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(f"Unknown dtype {name!r} in the {owner} configuration.")
    return dtype


#: A ``torch.dtype`` written by name: ``torch.float32`` <-> ``"float32"``.
DTYPE = Codec(lambda d: str(d).removeprefix("torch."), _decode_dtype)


@dataclass(frozen=True)
class Option:
    """One constructor argument that rebuilds an object.

    Args:
        name: the key in the JSON configuration.
        attr: the attribute holding the value (default ``name``); or give ``get``.
        arg: the ``__init__`` keyword it is passed as (default ``name``).
        get: computes the value from the object instead of reading ``attr``.
        codec: how a value that is not plain JSON is written and read.
        positional: shown by value, without its name, in ``extra_repr``.
        show: shown in ``extra_repr`` when it differs from the ``__init__`` default.
        init: passed to ``__init__`` by :meth:`Configurable.from_config`; False for
            values a class's own ``from_config`` consumes (e.g. a saved layout).
    """

    name: str
    attr: str | None = None
    arg: str | None = None
    get: Callable[[Any], Any] | None = None
    codec: Codec | None = None
    positional: bool = False
    show: bool = True
    init: bool = True

    def value(self, obj: Any) -> Any:
        return self.get(obj) if self.get is not None else getattr(obj, self.attr or self.name)


class Configurable:
    """Mixin: ``get_config`` / ``from_config`` / ``extra_repr`` from ``config_options``."""

    config_options: ClassVar[tuple[Option, ...]] = ()

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this object (tensors not included)."""
        out: dict[str, Any] = {}
        for option in self.config_options:
            value = option.value(self)
            if option.codec is not None and value is not None:
                value = option.codec.encode(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[option.name] = value
        return out

    @classmethod
    def from_config(cls: type[C], config: dict[str, Any], **extra: Any) -> C:
        """Rebuild an object (tensors freshly initialised) from :meth:`get_config` output.

        ``extra`` keyword arguments go to ``__init__`` as they are (a subclass's
        ``from_config`` passes what it derived from the ``init=False`` options).

        Raises:
            ConfigError: ``config`` is not a mapping, or names an unknown option.
        """
        owner = cls.__name__
        if not isinstance(config, dict):
            raise ConfigError(f"A {owner} configuration must be a JSON object; got {config!r}.")
        options = {option.name: option for option in cls.config_options}
        unknown = sorted(set(config) - set(options))
        if unknown:
            raise ConfigError(
                f"Unknown option(s) {unknown} in the {owner} configuration; "
                f"known: {sorted(options)}."
            )
        kwargs: dict[str, Any] = {}
        for name, value in config.items():
            option = options[name]
            if not option.init:
                continue
            if option.codec is not None and value is not None:
                value = option.codec.decode(value, owner)
            kwargs[option.arg or option.name] = value
        return cls(**kwargs, **extra)

    def extra_repr(self) -> str:
        """The positional options, then every shown option that differs from its default."""
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        parts = []
        for option in self.config_options:
            value = option.value(self)
            if option.positional:
                parts.append(repr(value) if isinstance(value, str) else str(value))
                continue
            default = defaults.get(option.arg or option.name, _NO_DEFAULT)
            if option.show and option.init and not _same(value, default):
                parts.append(f"{option.name}={value!r}")
        return ", ".join(parts)


def _same(value: Any, default: Any) -> bool:
    if default is _NO_DEFAULT:
        return False
    try:
        return (bool(value == default) and type(value) is type(default)) or value is default
    except (TypeError, ValueError, RuntimeError):
        return False
