"""/metrics, /healthz and /readyz of a real `provisiond serve`, after real phone traffic."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.serve_process import REPO, serve


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for_devices(admin: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _get(admin + "/metrics")[1]
        if f"provisiond_devices_loaded {float(count)}" in text:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server did not load {count} device(s) within {timeout} s")


def test_metrics_health_and_json_logs(tmp_path: Path) -> None:
    with serve(tmp_path / "var", {"PROVISIOND_LOG_FORMAT": "json"}) as server:
        cli = [
            ".venv/bin/provisiond",
            "device",
            "create",
            "--extension",
            "200",
            "--model",
            "yealink-t46s",
            "--mac",
            "001565aabbcc",
        ]
        subprocess.run(cli, cwd=REPO, env=server.env, check=True, capture_output=True)
        # Another process wrote the device: the server's feed polls the audit log every 0.5 s
        # on SQLite, so wait (bounded) until it is loaded instead of racing the poll.
        _wait_for_devices(f"http://127.0.0.1:{server.admin_port}", 1)
        phone = f"http://127.0.0.1:{server.phone_port}/"
        urllib.request.urlopen(phone + "y000000000066.cfg", timeout=5).read()
        for _ in range(3):
            status, _ = _get(phone + "001565aabbcc.cfg")
        assert status == 200
        assert _get(phone + "001565aabbcd.cfg")[0] == 404
        tftp = subprocess.run(
            [
                "tftp",
                "127.0.0.1",
                str(server.tftp_port),
                "-m",
                "binary",
                "-c",
                "get",
                "y000000000066.cfg",
                str(tmp_path / "common.cfg"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (tmp_path / "common.cfg").read_bytes().startswith(b"#!version")

        admin = f"http://127.0.0.1:{server.admin_port}"
        assert _get(admin + "/healthz") == (200, '{"status": "ok"}')
        ready_status, ready = _get(admin + "/readyz")
        assert ready_status == 200
        assert json.loads(ready)["ready"] is True
        status, text = _get(admin + "/metrics")
        assert status == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert (
            samples[("provisiond_phone_requests_total", (("outcome", "ok"), ("protocol", "http")))]
            >= 4
        )
        assert (
            samples[
                (
                    "provisiond_phone_requests_total",
                    (("outcome", "not_found"), ("protocol", "http")),
                )
            ]
            == 1
        )
        assert (
            samples[
                (
                    "provisiond_phone_files_served_total",
                    (("protocol", "http"), ("vendor", "yealink")),
                )
            ]
            >= 4
        )
        assert samples[("provisiond_render_cache_hits_total", ())] >= 2
        assert samples[("provisiond_render_seconds_count", ())] >= 2
        assert samples[("provisiond_tftp_transfers_completed_total", ())] >= 1, tftp.stdout
        assert samples[("provisiond_devices_loaded", ())] == 1
        assert ("provisiond_bans_active", ()) in samples
    log_lines = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(line["logger"] == "provisiond.provisioning.memory" for line in log_lines)
