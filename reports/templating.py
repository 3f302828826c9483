"""The one Jinja2 environment every template renderer uses.

Autoescape is decided by extension with `html` listed explicitly
(`select_autoescape` would not escape `report.html.j2`), undefined names fail
loudly, and Markdown gets its own cell filter since HTML escaping is not what
a pull-request comment needs.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from reports.view import strip_control


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no pipes, newlines or raw HTML."""
    text = strip_control(str(value))
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def md_block(value: object) -> str:
    """Text safe inside a fenced code block: control characters and fences removed."""
    return strip_control(str(value)).replace("```", "ʼʼʼ")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True,
                                            default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    env.filters["mdblock"] = md_block
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
