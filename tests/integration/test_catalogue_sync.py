"""Start-up writes the catalogue (models.toml) to the database: adds, updates, removes what no
device uses and keeps, marked, what a device still uses; a broken file is a clear refusal."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from provisiond.app import TemplatesProblem, sync_models
from provisiond.domain.catalogue import CatalogueModel
from provisiond.services import Services
from provisiond.services.catalogue_sync import sync_catalogue
from provisiond.services.commands import DeviceCreate
from provisiond.settings import Settings
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, DeviceModel
from tests.phone_context import catalogue_models
from tests.serve_process import REPO, cli_env, run_cli_result


def _without(*ids: str) -> list[CatalogueModel]:
    return [m for m in catalogue_models().values() if m.id not in ids]


async def _row(db: Database, model_id: str) -> DeviceModel | None:
    async with db.read() as session:
        return await session.get(DeviceModel, model_id)


async def test_a_model_in_use_is_kept_and_an_unused_one_removed(
    db: Database, services: Services
) -> None:
    await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565aabbcc"), "t"
    )
    result = await sync_catalogue(db, _without("yealink-t46s", "yealink-t42s"))
    assert result.retired == ("yealink-t46s",)
    assert result.removed == ("yealink-t42s",)
    kept = await _row(db, "yealink-t46s")
    assert kept is not None
    assert kept.in_catalogue is False
    assert await _row(db, "yealink-t42s") is None
    models = {m["id"]: m for m in await services.catalogue.models("yealink")}
    assert models["yealink-t46s"]["in_catalogue"] is False

    back = await sync_catalogue(db, list(catalogue_models().values()))
    assert set(back.added) == {"yealink-t42s"}
    assert back.updated == ("yealink-t46s",)
    restored = await _row(db, "yealink-t46s")
    assert restored is not None
    assert restored.in_catalogue is True
    async with db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions.count("catalogue.sync") == 2


async def test_an_unchanged_catalogue_writes_nothing(db: Database) -> None:
    models = list(catalogue_models().values())
    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(AuditEntry))
    results = await asyncio.gather(sync_catalogue(db, models), sync_catalogue(db, models))
    assert [r.changed for r in results] == [False, False]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == before


async def test_an_unchanged_catalogue_never_waits_for_the_write_lock(db: Database) -> None:
    """Every CLI command syncs: with nothing to change it must not queue behind (or block) an
    admin write in progress."""
    models = list(catalogue_models().values())
    async with db.write():
        result = await asyncio.wait_for(sync_catalogue(db, models), timeout=5)
    assert result.changed is False


async def test_a_broken_catalogue_is_refused_by_name(tmp_path: Path, db: Database) -> None:
    root = tmp_path / "templates"
    shutil.copytree(REPO / "phone_templates", root)
    models = root / "yealink" / "models.toml"
    models.write_text(models.read_text(encoding="utf-8") + '\n[[models]]\nname = "X"\n')
    settings = Settings(database_url=db.url, templates_dir=root)
    with pytest.raises(TemplatesProblem, match=r"yealink/models.toml: models\[\d+\]"):
        await sync_models(settings, db)


def test_the_command_line_names_the_broken_file(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    shutil.copytree(REPO / "phone_templates", root)
    (root / "snom" / "models.toml").write_text("[series.D7xx]\naccounts = 0\n")
    env = cli_env(tmp_path / "data", {"PROVISIOND_TEMPLATES_DIR": str(root)})
    result = run_cli_result(env, "models")
    assert result.returncode != 0
    assert "snom/models.toml" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
