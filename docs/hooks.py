"""mkdocs hook: the build fails on a Sphinx role left in a docstring (``:class:`X```), which mkdocstrings renders
as raw text; write ``[`X`][clef_sdk.module.X]`` (a cross-reference) or ```X``` instead."""

from __future__ import annotations

import re

from mkdocs.exceptions import PluginError

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`[^`<]+`")


def on_page_content(html: str, page, config, files) -> str:
    leftover = sorted(set(ROLE.findall(html)))
    if leftover:
        raise PluginError(f"{page.file.src_path} renders Sphinx roles as text: {', '.join(leftover[:5])}")
    return html
