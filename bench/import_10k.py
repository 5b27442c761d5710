"""Bulk import: seconds for ``provisiond import`` of a 10,000-line CSV into a fresh SQLite data dir.

    .venv/bin/python bench/import_10k.py [--lines 10000] [--keep]

The CSV is generated: users with one to three devices each (the first line of each user marked
primary on every third user), one device in twenty unassigned, four Yealink/Snom/Polycom/
Grandstream models, MACs and extensions all new. A fresh data dir is made and migrated first
(``provisiond db upgrade``, timed apart); then ``provisiond import devices.csv`` runs as a real
subprocess and its wall time is the result (interpreter start-up included). Afterwards the
database is counted (devices, users, audit rows) to make sure the import did what it says.
Results: bench/out/import_10k.json. Target: under 10 s for 10,000 lines.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import common
from common import print

TARGET_S = 10.0
MODELS = ("yealink-t46s", "snom-d785", "polycom-vvx-400", "grandstream-gxp2135")
FIRST_EXTENSION = 300_000


def write_csv(path: Path, lines: int) -> tuple[int, int]:
    """The import file; returns (users, unassigned devices)."""
    users = unassigned = 0
    with path.open("w", newline="", encoding="utf-8") as stream:
        out = csv.writer(stream)
        out.writerow(["mac", "model", "extension", "username", "display_name", "primary"])
        index = 0
        while index < lines:
            if index % 20 == 19:
                out.writerow([*_device(index), "", "", ""])
                unassigned += 1
                index += 1
                continue
            size = min(1 + users % 3, lines - index)
            name = f"user{users:05d}"
            for n in range(size):
                primary = "1" if n == 0 and users % 3 == 0 else ""
                out.writerow([*_device(index + n), name, f"User {users}", primary])
            index += size
            users += 1
    return users, unassigned


def _device(index: int) -> list[str]:
    mac = f"{(common.OUI << 24) + 0x800000 + index:012x}"
    return [mac, MODELS[index % len(MODELS)], str(FIRST_EXTENSION + index)]


def run(argv: list[str], env: dict[str, str]) -> float:
    """Run a provisiond command; its wall time in seconds (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(common.PROVISIOND), *argv], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"provisiond {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def count(db: Path) -> dict[str, int]:
    """Rows the import must have written."""
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("devices", "users", "audit_log")
        }


def main() -> None:
    """Generate, migrate, import, check, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and print it")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="provisiond-import-"))
    try:
        source = work / "devices.csv"
        users, unassigned = write_csv(source, args.lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
        env["PROVISIOND_DATA_DIR"] = str(work / "var")
        upgrade_s = run(["db", "upgrade"], env)
        import_s = run(["import", str(source)], env)
        rows = count(work / "var" / "provisiond.db")
        expected = {"devices": args.lines, "users": users}
        if {k: rows[k] for k in expected} != expected:
            raise SystemExit(f"the import wrote {rows}, expected {expected}")
        verdict = "PASS" if import_s < TARGET_S else "FAIL"
        print(
            common.table(
                ["lines", "users", "unassigned", "db upgrade s", "import s", "target s", ""],
                [
                    [
                        args.lines,
                        users,
                        unassigned,
                        f"{upgrade_s:.2f}",
                        f"{import_s:.2f}",
                        f"{TARGET_S:.0f}",
                        verdict,
                    ]
                ],
            )
        )
        result = {
            "lines": args.lines,
            "users": users,
            "unassigned": unassigned,
            "db_upgrade_s": round(upgrade_s, 3),
            "import_s": round(import_s, 3),
            "target_s": TARGET_S,
            "rows": rows,
            "cpus": os.cpu_count(),
        }
        print(f"written {common.write_result('import_10k', result)}")
    finally:
        if args.keep:
            print(f"data dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
