"""mkdocs hook: the command line reference is generated from the ``clef`` parser, so it cannot drift."""

from __future__ import annotations

import argparse

PLACEHOLDER = "<!-- clef-cli-reference -->"


def _sections(parser: argparse.ArgumentParser, command: str) -> list[str]:
    parser.prog = command
    out = [f"## `{command}`\n\n```text\n{parser.format_help()}```\n"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += _sections(child, f"{command} {name}")
    return out


def on_page_markdown(markdown: str, page, config, files) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    from clef_sdk.cli import build_parser

    return markdown.replace(PLACEHOLDER, "\n".join(_sections(build_parser(), "clef")))
