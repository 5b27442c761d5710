"""A real phone-facing stack on loopback: the resolver behind HTTP and TFTP, over a test database.

Tests import the `phone_stack` fixture (re-exported by tests/integration/conftest.py): it
starts the phone HTTP app on an ephemeral port and the TFTP server on another, both calling the
same `Resolver` as `provisiond serve` does, built by the same composition root
(`provisiond.app.build_phone_side`): the in-memory directory and its change feed. Every admin
write made through `services` is followed by a feed poll (as in the server), so a test sees its
change on the phone side at once, deterministically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from provisiond.app import build_guard, build_phone_side
from provisiond.frontends.http_common import SourceCounter
from provisiond.frontends.phone_http import HttpLimits, start_phone_listener
from provisiond.frontends.phone_tftp import TftpServer
from provisiond.provisioning.activity import ActivityRecorder
from provisiond.provisioning.changes import ChangeFeed
from provisiond.provisioning.resolver import Resolver
from provisiond.server import tftp_config
from provisiond.services import Services


@dataclass
class PhoneStack:
    """Where the phone side listens, and its parts."""

    http_url: str  # "http://127.0.0.1:PORT/"
    tftp_host: str
    tftp_port: int
    resolver: Resolver
    activity: ActivityRecorder
    services: Services
    feed: ChangeFeed


@pytest.fixture
async def phone_stack(services: Services) -> AsyncIterator[PhoneStack]:
    """Phone HTTP + TFTP on 127.0.0.1 ephemeral ports over the test database."""
    settings = services.ctx.settings
    db = services.ctx.db
    activity = ActivityRecorder(db, interval=3600)  # tests flush explicitly
    phone = await build_phone_side(
        settings, db, services.ctx.secrets, guard=build_guard(settings), activity=activity
    )
    resolver = phone.resolver
    limits = HttpLimits(max_body=settings.max_upload_bytes)
    listener = await start_phone_listener(
        resolver,
        "127.0.0.1",
        0,
        counter=SourceCounter(limits.max_connections_per_source),
        limits=limits,
        prefix="prov",
    )
    port = listener.port
    tftp = TftpServer(resolver, tftp_config(settings, "127.0.0.1", 0))
    await tftp.start()
    try:
        yield PhoneStack(
            feed=phone.feed,
            http_url=f"http://127.0.0.1:{port}/",
            tftp_host="127.0.0.1",
            tftp_port=tftp.sockname[1],
            resolver=resolver,
            activity=activity,
            services=services,
        )
    finally:
        await tftp.stop()
        await listener.close()
        await phone.stop()
