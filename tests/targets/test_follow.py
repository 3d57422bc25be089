"""kit/targets/follow.py without a registry: the webhook listener answers MLflow's signed deliveries
(signature as mlflow.webhooks.delivery computes it), reloads only for its own NAME@ALIAS, refuses
forged, stale or misrouted requests; polling reloads when the holder differs and survives errors."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from kit.targets.follow import AliasWebhook, follow


class FakeClient:
    def __init__(self, refuse: bool = False):
        self.refuse, self.created, self.deleted = refuse, [], []

    def create_webhook(self, name, url, events, description=None, secret=None):
        if self.refuse:
            raise RuntimeError("API request to endpoint /api/2.0/mlflow/webhooks failed with error code 403 != 200")
        self.created.append((name, url, events, secret))
        return type("Hook", (), {"webhook_id": "w1"})()

    def delete_webhook(self, webhook_id):
        self.deleted.append(webhook_id)


async def post(port: int, body: bytes, headers: dict[str, str], path: str = "/hook") -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


def signed(secret: str, payload: dict, stamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload)
    stamp = str(stamp or int(time.time()))
    return body.encode(), {"X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": stamp,
                           "X-MLflow-Signature": _generate_hmac_signature(secret, "d1", stamp, body)}


def test_the_webhook_listener_reloads_on_signed_events_for_its_alias_only(unused_port):
    async def scenario():
        reloads = []

        async def reload():
            reloads.append(1)

        client = FakeClient()
        hook = AliasWebhook(lambda: client, "m", "champion", f"http://127.0.0.1:{unused_port}/hook", reload)
        assert await hook.start()
        (name, url, events, secret), = client.created
        assert events == ["model_version_alias.created", "model_version_alias.deleted"] and secret == hook.secret
        mine = {"entity": "model_version_alias", "action": "created", "data": {"name": "m", "alias": "champion"}}
        other = {**mine, "data": {"name": "m", "alias": "staging"}}
        statuses = [await post(unused_port, *signed(secret, mine)),
                    await post(unused_port, *signed(secret, other)),
                    await post(unused_port, *signed("not-the-secret", mine)),
                    await post(unused_port, *signed(secret, mine, stamp=int(time.time()) - 3600)),
                    await post(unused_port, *signed(secret, mine), path="/elsewhere")]
        await asyncio.sleep(0.1)
        await hook.stop()
        return statuses, reloads, client.deleted

    statuses, reloads, deleted = asyncio.run(scenario())
    assert statuses == [204, 204, 401, 401, 404]
    assert reloads == [1]  # only the signed event for m@champion
    assert deleted == ["w1"]


def test_a_refused_webhook_says_why_and_leaves_polling(unused_port, capsys):
    async def scenario():
        hook = AliasWebhook(lambda: FakeClient(refuse=True), "m", "champion",
                            f"http://127.0.0.1:{unused_port}/hook", None)
        return await hook.start()

    assert asyncio.run(scenario()) is False
    assert "no webhook for m@champion (the registry refused the webhook: API request" in capsys.readouterr().err


def test_polling_reloads_when_the_holder_moves_and_keeps_serving_when_the_registry_fails(capsys):
    answers = ["1", RuntimeError("registry down"), "2", "2"]  # what the registry says, look by look
    served, reloads = ["1"], []

    def resolve():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def reload():
        reloads.append(1)
        served[0] = "2"

    asyncio.run(follow("m", "champion", resolve, lambda: served[0], reload, lambda: not answers, 0.01))
    assert reloads == [1] and served == ["2"]  # one switch, on the third look; none on the fourth
    assert "cannot resolve m@champion, still serving v1: registry down" in capsys.readouterr().err


@pytest.fixture
def unused_port():
    from conftest import free_port

    return free_port()
