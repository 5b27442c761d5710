"""The README's quick start works when pasted, against a real `provisiond serve`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.serve_process import REPO, serve


def quickstart() -> str:
    """The shell block after the `<!-- quickstart -->` marker."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", text, re.DOTALL)
    assert found, "README.md lost its quick start block"
    return found.group(1)


def test_readme_names_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`make run`" in text
    assert "`make test`" in text
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
    assert "PROVISIOND_TEST_DATABASE_URL" in ci


def test_quickstart_pasted(tmp_path: Path) -> None:
    with serve(tmp_path / "var") as server:
        script = quickstart()
        script = script.replace("http://127.0.0.1:8081/api/v1", server.api)
        script = script.replace("http://127.0.0.1:8080/", f"http://127.0.0.1:{server.phone_port}/")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The primary change reported old and new main extension.
    changed = re.search(r'"main_extension_changed": \{"old": "200", "new": "202"\}', out)
    assert changed, out
    # The autocomplete answered both devices, ordered by extension.
    page = json.loads(next(line for line in out.splitlines() if line.startswith('{"items"')))
    assert [d["extension"] for d in page["items"]] == ["200", "202"]
    # The Yealink's file carries its account.
    assert "account.1.user_name = 200" in out
    assert "account.1.display_name = Mario Rossi" in out
