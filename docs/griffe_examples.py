"""A griffe extension for the API reference: read ``Example:`` sections as examples.

synthembed's docstrings title their runnable examples ``Example:`` (singular);
griffe's Google parser knows only ``Examples:`` and would render the doctest
as prose. This renames the title before the docstring is parsed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", flags=re.M)


class SingularExample(griffe.Extension):
    """Rewrite ``Example:`` section titles to ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
