"""Following an alias: what `kit serve cloud|edge --follow-interval / --follow-webhook` share.

A server that follows its alias calls its own reload (the same zero-drop switch SIGHUP makes) when
the holder is not the version it serves. It learns that two ways:
- polling: every INTERVAL seconds it asks the registry (works wherever the registry is reachable);
- MLflow's registry webhooks (`--follow-webhook URL`): it registers a webhook for alias events
  with a secret of its own, listens at URL's host, port and path, reloads on a signed event for
  its NAME@ALIAS, and deletes the webhook when it stops. MLflow lets only an admin create webhooks
  and the server must reach URL, so polling stays on as the fallback (every
  WEBHOOK_FALLBACK_SECONDS unless --follow-interval says otherwise). An event is only a hint: the
  reload still asks the registry who holds the alias.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

WEBHOOK_FALLBACK_SECONDS = 60.0
SIGNATURE_MAX_AGE = 300  # seconds: an older signed delivery is refused (replay)
EVENTS = ("model_version_alias.created", "model_version_alias.deleted")


async def follow(name: str, alias: str, resolve: Callable[[], str], serving: Callable[[], str],
                 reload: Callable[[], Awaitable], closing: Callable[[], bool], interval: float | None,
                 webhook_url: str | None = None, client: Callable | None = None) -> None:
    """Until `closing()` (or cancelled): every `interval` seconds, `resolve()` (blocking, run in a
    thread) the holder of NAME@ALIAS and `await reload()` when it differs from `serving()`; with
    `webhook_url`, also on each verified webhook event (`client()`: an MlflowClient to register it).
    A registry that is down or an alias that is gone leaves the server serving what it serves."""
    what = f"{name}@{alias}"
    webhook = None
    if webhook_url:
        webhook = AliasWebhook(client, name, alias, webhook_url, reload)
        if not await webhook.start():
            webhook = None
        interval = interval or WEBHOOK_FALLBACK_SECONDS
    try:
        while not closing():
            await asyncio.sleep(interval)
            try:
                version = await asyncio.to_thread(resolve)
            except Exception as error:  # keep serving; look again next interval
                print(f"follow: cannot resolve {what}, still serving v{serving()}: {error}", file=sys.stderr, flush=True)
                continue
            if not closing() and version != serving():
                await reload()
    finally:
        if webhook is not None:
            await webhook.stop()


class AliasWebhook:
    """One MLflow registry webhook for alias events, and the HTTP listener it posts to."""

    def __init__(self, client: Callable, name: str, alias: str, url: str, reload: Callable[[], Awaitable]):
        import secrets
        from urllib.parse import urlsplit

        self.client, self.name, self.alias, self.url, self.reload = client, name, alias, url, reload
        self.secret = secrets.token_urlsafe(32)
        self.parts = urlsplit(url)
        self.webhook_id: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> bool:
        """Listen, then register (MLflow may test-deliver at once). False, with one line why, if not."""
        try:
            self._server = await asyncio.start_server(self._answer, self.parts.hostname, self.parts.port or 80)
        except OSError as error:
            return self._give_up(f"cannot listen on {self.parts.hostname}:{self.parts.port}: {error.strerror or error}")
        try:
            import uuid

            hook = await asyncio.to_thread(self.client().create_webhook, f"kit-serve-{self.name}-{self.alias}-{uuid.uuid4().hex[:8]}",
                                           self.url, list(EVENTS), description=f"kit serve follows {self.name}@{self.alias}",
                                           secret=self.secret)
        except Exception as error:  # typically 403: under basic-auth only an admin may create webhooks
            await self._close_listener()
            return self._give_up(f"the registry refused the webhook: {str(error).splitlines()[0][:300]}")
        self.webhook_id = hook.webhook_id
        print(f"follow: webhook {hook.webhook_id} posts {self.name}@{self.alias} changes to {self.url}", flush=True)
        return True

    async def stop(self) -> None:
        if self.webhook_id is not None:
            try:
                await asyncio.to_thread(self.client().delete_webhook, self.webhook_id)
            except Exception as error:
                print(f"follow: could not delete webhook {self.webhook_id}: {error}", file=sys.stderr, flush=True)
        await self._close_listener()

    def _give_up(self, why: str) -> bool:
        print(f"follow: no webhook for {self.name}@{self.alias} ({why}); polling only", file=sys.stderr, flush=True)
        return False

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """MLflow's signature: "v1," + base64(HMAC-SHA256(secret, "DELIVERY_ID.TIMESTAMP.BODY")), recent."""
        import base64
        import hashlib
        import hmac
        import time

        delivery, stamp = headers.get("x-mlflow-delivery-id", ""), headers.get("x-mlflow-timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_MAX_AGE:
            return False
        digest = hmac.new(self.secret.encode(), f"{delivery}.{stamp}.".encode() + body, hashlib.sha256).digest()
        return hmac.compare_digest(f"v1,{base64.b64encode(digest).decode()}", headers.get("x-mlflow-signature", ""))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection (MLflow's delivery): 204 for a verified event, else 4xx."""
        import json

        status = 400
        try:
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1").split("\r\n")
            method, path = (head[0].split(" ") + ["", ""])[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            length = int(headers.get("content-length", "0"))
            body = await asyncio.wait_for(reader.readexactly(length), 10) if 0 < length <= 1 << 20 else b""
            if method != "POST" or path.split("?")[0] != (self.parts.path or "/"):
                status = 404
            elif not self.verify(headers, body):
                status = 401
            else:
                status = 204
                event = json.loads(body)
                data = event.get("data") or {}
                if data.get("name") == self.name and data.get("alias") == self.alias:
                    task = asyncio.get_running_loop().create_task(self.reload())  # answer now, switch after
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            status = 400
        finally:
            reason = {204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
            try:
                writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
                await writer.drain()
                writer.close()
            except (ConnectionError, RuntimeError):
                pass


def add_follow_argument(parser) -> None:
    """`--follow-interval SECONDS` and `--follow-webhook URL`, the same for every target's `kit serve`."""
    parser.add_argument("--follow-interval", type=_seconds, metavar="SECONDS",
                        help="look at the alias every SECONDS and switch (as SIGHUP does) when it moved, "
                             "e.g. when a CI job promotes on a team server (default: only on SIGHUP)")
    parser.add_argument("--follow-webhook", type=_webhook_url, metavar="URL",
                        help="register an MLflow registry webhook posting alias changes to URL (an address the "
                             "tracking server reaches; listened on here; needs an admin user) and switch on each; "
                             f"polling stays on as the fallback (default every {WEBHOOK_FALLBACK_SECONDS:g} s)")


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds > 0")
    return value


def _webhook_url(text: str) -> str:
    import argparse
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or not port:
        raise argparse.ArgumentTypeError(f"{text!r}: use http://HOST:PORT/PATH, an address of this machine "
                                         "the tracking server can reach (HOST:PORT is listened on here)")
    return text
