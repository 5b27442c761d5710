"""The renderer: escaping rules, strictness, line endings and the compiled-template cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, FileSpec
from provisiond.provisioning.render import Renderer, RenderError, oneline, quoted


def make(root: Path, name: str, text: str) -> FileSpec:
    """Write root/acme/<name> and return a device spec rendering it."""
    (root / "acme").mkdir(exist_ok=True)
    (root / "acme" / name).write_text(text, encoding="utf-8")
    return FileSpec(pattern=re.compile("x"), kind=FileKind.DEVICE, template=name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Rossi & <Figli>", "Rossi & <Figli>"),
        ("a\nb", "ab"),
        ("a\r\nkey = x", "akey = x"),
        ("tab\there", "tabhere"),
        ("nul\x00esc\x1bdel\x7fnel\x85", "nulescdelnel"),
        ("line\u2028para\u2029end", "lineparaend"),
        ("Müller 東京 ☎", "Müller 東京 ☎"),
        (201, "201"),
    ],
)
def test_oneline(value: object, expected: str) -> None:
    assert oneline(value) == expected


def test_quoted() -> None:
    assert quoted('say "hi"\n') == "say 'hi'"


def test_xml_templates_are_escaped_and_others_are_not(tmp_path: Path) -> None:
    xml = make(tmp_path, "a.xml.j2", "<n>{{ v }}</n>")
    text = make(tmp_path, "a.cfg.j2", "n = {{ v }}")
    renderer = Renderer(tmp_path)
    value = {"v": 'R & <F> "q"'}
    assert renderer.render("acme", xml, value) == b"<n>R &amp; &lt;F&gt; &#34;q&#34;</n>"
    assert renderer.render("acme", text, value) == b'n = R & <F> "q"'


def test_undefined_names_fail(tmp_path: Path) -> None:
    spec = make(tmp_path, "a.cfg.j2", "{{ line.password }}")
    with pytest.raises(RenderError, match=r"acme/a\.cfg\.j2: UndefinedError"):
        Renderer(tmp_path).render("acme", spec, {})


def test_none_never_reaches_the_output(tmp_path: Path) -> None:
    spec = make(tmp_path, "a.cfg.j2", "proxy = {{ proxy }}")
    with pytest.raises(RenderError, match=r"acme/a\.cfg\.j2: a template printed None"):
        Renderer(tmp_path).render("acme", spec, {"proxy": None})


def test_missing_template_and_kind_without_template(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path)
    missing = FileSpec(pattern=re.compile("x"), kind=FileKind.DEVICE, template="nope.j2")
    with pytest.raises(RenderError, match="TemplateNotFound"):
        renderer.render("acme", missing, {})
    upload = FileSpec(pattern=re.compile("x"), kind=FileKind.UPLOAD)
    with pytest.raises(RenderError, match="has no template"):
        renderer.render("acme", upload, {})


def test_utf8_blocks_and_trailing_newline(tmp_path: Path) -> None:
    spec = make(tmp_path, "a.cfg.j2", "{% if on %}\n  a = {{ v }}\n{% endif %}\nb = 1\n")
    body = Renderer(tmp_path).render("acme", spec, {"on": True, "v": "Müller"})
    assert body == "  a = Müller\nb = 1\n".encode()


def test_crlf_line_endings(tmp_path: Path) -> None:
    spec = make(tmp_path, "a.cfg.j2", "a = 1\nb = {{ v }}\n")
    crlf = FileSpec(
        pattern=spec.pattern, kind=spec.kind, template=spec.template, line_ending="crlf"
    )
    renderer = Renderer(tmp_path)
    assert renderer.render("acme", crlf, {"v": "x\ny"}) == b"a = 1\r\nb = x\r\ny\r\n"
    assert renderer.render("acme", spec, {"v": 2}) == b"a = 1\nb = 2\n"


def test_templates_are_compiled_once(tmp_path: Path) -> None:
    spec = make(tmp_path, "a.cfg.j2", "first\n")
    renderer = Renderer(tmp_path)
    assert renderer.render("acme", spec, {}) == b"first\n"
    # No reload check on the hot path: an edit needs a new Renderer (a restart).
    make(tmp_path, "a.cfg.j2", "second\n")
    assert renderer.render("acme", spec, {}) == b"first\n"
    assert Renderer(tmp_path).render("acme", spec, {}) == b"second\n"
