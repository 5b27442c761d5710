"""Render phone configuration files from the Jinja2 templates in ``phone_templates/``.

One `jinja2.Environment` serves every vendor: templates are compiled once and kept (no
reload check on the hot path; restart or build a new `Renderer` to pick up edits).
Rules (docs/templates.md):
- ``StrictUndefined``: a template that uses a name its file kind does not provide fails
  loudly instead of rendering an empty value;
- autoescape only for ``*.xml.j2`` templates, so XML output can never be broken by a value;
- free text in the other formats goes through ``oneline`` (no CR/LF/control characters, so a
  display name cannot inject a key) and, for ``KEY="value"`` formats, ``quoted``;
- a ``None`` reaching the output is an error, never the text "None".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

import jinja2

from provisiond.domain.identify import FileSpec

__all__ = ["RenderError", "Renderer", "oneline", "quoted"]

# Unicode categories removed by `oneline`: controls (CR, LF, TAB, NUL, NEL, ...) and the
# line/paragraph separators that some parsers also treat as line breaks.
_DROPPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class RenderError(RuntimeError):
    """A template could not be rendered (missing template, undefined name, None value)."""


def oneline(value: object) -> str:
    """Return `value` as text without CR, LF or any other control character."""
    text = str(value)
    return "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)


def quoted(value: object) -> str:
    """`oneline`, then ``"`` replaced by ``'``: safe inside ``KEY="value"`` formats."""
    return oneline(value).replace('"', "'")


def _finalize(value: object) -> object:
    """Refuse None in the output: it means a template forgot to test an unset option."""
    if value is None:
        raise RenderError("a template printed None; guard the optional value with {% if %}")
    return value


class Renderer:
    """Renders vendor templates under `root` (the ``phone_templates`` directory)."""

    def __init__(self, root: Path) -> None:
        """Create the one environment over `root`; nothing is compiled until first use."""
        self.root = root
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(root, encoding="utf-8"),
            undefined=jinja2.StrictUndefined,
            # XML templates only; the other formats escape with `oneline`/`quoted`.
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("xml.j2",), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            finalize=_finalize,
            # Compiled templates are kept for the process lifetime: no size limit and no
            # per-render stat() of the source file during a boot storm.
            cache_size=-1,
            auto_reload=False,
        )
        self.environment.filters["oneline"] = oneline
        self.environment.filters["quoted"] = quoted

    def render(self, vendor_id: str, spec: FileSpec, context: Mapping[str, object]) -> bytes:
        """Render `spec`'s template of vendor `vendor_id` with `context`, as UTF-8 bytes.

        Line endings become CRLF when the spec says ``line_ending = "crlf"``.
        Raises `RenderError` for a spec without template or any template failure.
        """
        if spec.template is None:
            raise RenderError(f"{vendor_id}: file kind {spec.kind} has no template")
        name = f"{vendor_id}/{spec.template}"
        try:
            text = self.environment.get_template(name).render(context)
        except RenderError as exc:
            raise RenderError(f"{name}: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from exc
        if spec.line_ending == "crlf":
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return text.encode("utf-8")
