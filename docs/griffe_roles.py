"""A griffe extension for the API reference (mkdocs.yml): the docstrings' Sphinx roles as code.

The package's docstrings cross-reference with reStructuredText roles (:class:`~actionpipe.api.Result`,
:func:`pack_people`, :mod:`actionpipe.api`); Markdown would show the role names. Each becomes inline
code: the last component with ``~`` (as Sphinx shows it), the whole target otherwise.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    def code(match: re.Match) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return ROLE.sub(code, text)


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
