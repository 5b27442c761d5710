"""Import, export and firmware through the admin API and the `provisiond` command line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from provisiond.cli import main
from provisiond.storage.database import Database
from tests.dbdump import unchanged
from tests.integration.api_fixtures import Api

GOOD = (
    "mac,model,extension,username,display_name,primary\n"
    "00:15:65:00:00:01,yealink-t46s,201,mrossi,Mario Rossi,\n"
    "00:15:65:00:00:02,yealink-t46s,202,mrossi,Mario Rossi,1\n"
)
BAD = GOOD + "zz,yealink-t46s,203,,,\n"


async def test_api_import_csv_and_json(api: Api) -> None:
    reply = await api.call("POST", "/api/v1/import", raw=GOOD, headers={"Content-Type": "text/csv"})
    assert reply.status == 200, reply.text
    assert reply.json["devices_created"] == 2
    rows = [{"mac": "001565000003", "model": "snom-d785", "extension": "203"}]
    assert (await api.ok("POST", "/api/v1/import", rows))["devices_created"] == 1
    user = (await api.ok("GET", "/api/v1/users"))["items"][0]
    assert (user["username"], user["main_extension"]) == ("mrossi", "202")


async def test_api_refusal_lists_lines_and_changes_nothing(api: Api, db: Database) -> None:
    csv_type = {"Content-Type": "text/csv"}
    async with unchanged(db):
        reply = await api.call("POST", "/api/v1/import", raw=BAD, headers=csv_type)
        assert reply.status == 422
        body = reply.json
        assert body["error"] == "import_refused"
        assert [(e["line"], e["field"]) for e in body["lines"]] == [(4, "mac")]
        assert "zz" in body["lines"][0]["detail"]
        reply = await api.call("POST", "/api/v1/import", {"rows": "nope"})
        assert reply.status == 422
        reply = await api.call(
            "POST", "/api/v1/import", raw=GOOD, token=api.read_token, headers=csv_type
        )
        assert reply.status == 403
        reply = await api.call("POST", "/api/v1/import", raw=b"\xff\xfe", headers=csv_type)
        assert (reply.status, reply.json["field"]) == (422, "body")


async def test_api_export(api: Api) -> None:
    await api.call("POST", "/api/v1/import", raw=GOOD, headers={"Content-Type": "text/csv"})
    reply = await api.call("GET", "/api/v1/export", token=api.read_token)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/csv")
    assert reply.text.splitlines()[1].startswith("00:15:65:00:00:02,yealink-t46s,202,mrossi")
    rows = await api.ok("GET", "/api/v1/export?format=json")
    assert [r["extension"] for r in rows] == ["202", "201"]
    assert (await api.call("GET", "/api/v1/export?format=xml")).status == 422
    assert "sip_password" not in reply.text


# -- the command line (embedded SQLite, as on a newcomer's machine) ---------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PROVISIOND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROVISIOND_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PROVISIOND_FIRMWARE_DIR", str(tmp_path / "firmware"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_export_asterisk(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "bad.csv").write_text(BAD)
    (env / "good.csv").write_text(GOOD)
    code, out, err = run(capsys, "import", str(env / "bad.csv"))
    assert code == 1
    assert err.splitlines()[0].startswith("line 4: mac: 'zz' is not a MAC address")
    assert err.splitlines()[-1].startswith("provisiond: error: 1 problem(s) on 1 line(s)")
    code, out, err = run(capsys, "import", str(env / "good.csv"))
    assert (code, json.loads(out)["devices_created"]) == (0, 2), err
    code, out, _ = run(capsys, "export")
    assert out.splitlines()[0].startswith("mac,model,extension")
    code, _, err = run(capsys, "export", "--format", "asterisk")
    assert code == 1  # passwords only into files
    assert "--output" in err
    code, out, err = run(capsys, "export", "--format", "asterisk", "--output", str(env / "ast"))
    assert code == 0, err
    for name in json.loads(out)["written"]:
        assert stat.S_IMODE(Path(name).stat().st_mode) == 0o600
    assert (
        "exten => 202,1,Dial(PJSIP/202&PJSIP/201,30)"
        in (env / "ast" / "extensions_provisiond.conf").read_text()
    )


def test_cli_firmware(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = env / "T46S-66.86.0.160.rom"
    image.write_bytes(os.urandom(5000))
    code, _, err = run(capsys, "firmware", "add", str(image), "--model", "nope", "--version", "1")
    assert (code, "unknown model" in err) == (1, True)
    wrong = env / "T46S.txt"
    wrong.write_bytes(b"x")
    code, _, err = run(
        capsys, "firmware", "add", str(wrong), "--model", "yealink-t46s", "--version", "1"
    )
    assert (code, "no phone asks for firmware" in err) == (1, True)
    args = ("firmware", "add", str(image), "--model", "yealink-t46s", "--version", "66.86.0.160")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert json.loads(out)["size"] == 5000
    assert run(capsys, *args)[0] == 1  # the same model and version twice
    assert run(capsys, "firmware", "target", "yealink-t46s", "66.86.0.160")[0] == 0
    code, out, _ = run(capsys, "firmware", "list")
    assert json.loads(out)["targets"] == {"yealink-t46s": "66.86.0.160"}
    assert run(capsys, "firmware", "verify")[0] == 0
    stored = env / "firmware" / image.name
    data = stored.read_bytes()
    # Flip the first byte: writing a zero there changed nothing once in 256 runs (the random
    # image's first byte was zero already) and the test failed for no fault of the store.
    stored.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    code, out, err = run(capsys, "firmware", "verify")
    assert code == 1
    assert "checksum" in out
    assert run(capsys, "firmware", "target", "yealink-t46s", "--clear")[0] == 0
