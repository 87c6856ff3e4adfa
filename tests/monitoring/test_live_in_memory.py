"""Without Redis (the embedded default: one process, in-memory channel layer) a change committed on
any thread of the process reaches the websocket consumers of that process, numbered."""

from __future__ import annotations

import asyncio

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction

from monitoring.routing import websocket_urlpatterns
from tests import factories
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_memory(settings):
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_a_committed_change_reaches_a_consumer_of_this_process(in_memory):
    factories.account("acc1")
    factories.account("acc2")
    key = factories.api_key("key1", accounts=["acc1"])

    def commit_changes() -> None:
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc2", {"cash": "9.00"})  # not this key's account
            publish(EventKind.BALANCE, "acc1", {"cash": "1.00"})
        with pytest.raises(RuntimeError), transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "2.00"})
            raise RuntimeError("rolled back")
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "3.00"})

    async def scenario() -> list[dict]:
        application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"authorization", f"Bearer {key}".encode())])
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from()
        assert hello["accounts"] == ["acc1"]
        await database_sync_to_async(commit_changes)()  # another thread, as a request's or a task's
        received = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return [hello, *received]

    hello, first, second = asyncio.run(scenario())
    base = hello["seq"]["acc1"]
    assert [(e["account"], e["data"]["cash"], e["seq"]) for e in (first, second)] == [("acc1", "1.00", base + 1),
                                                                                        ("acc1", "3.00", base + 2)]
