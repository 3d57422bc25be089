"""`kit serve edge NAME --alias ALIAS`: the Node edge server on the alias's bundle, run by this process.

    kit serve edge (Python: the registry, signals, --follow-interval / --follow-webhook)
        '--> node server.js --bundle workspaces/edge/NAME-vN   (HTTP, the bundle's predictor)
    SIGHUP, or the alias moved (kit/targets/follow.py): fetch vM's bundle, POST it to Node's
    /admin/reload (loopback + a per-process token), Node loads it beside vN and switches

The switch drops no request: Node reads its served bundle once per request, so each request is
answered wholly by vN or wholly by vM, and vN's predictor is freed once its last request is answered.
A bundle that does not load leaves vN serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from kit.targets.edge.deploy import fetch_bundle, holder, serve_command
from kit.targets.follow import follow

RELOAD_SECONDS = 300  # Node loading a bundle (TF.js graph models take a few seconds)


class EdgeServer:
    def __init__(self, root: Path, name: str, alias: str, port: int, host: str = "127.0.0.1",
                 follow_interval: float | None = None, follow_webhook: str | None = None, **options):
        self.root, self.name, self.alias, self.port, self.host = root, name, alias, port, host
        self.follow_interval, self.follow_webhook, self.options = follow_interval, follow_webhook, options
        self.token = secrets.token_urlsafe(32)
        self.version: str | None = None
        self.url: str | None = None
        self.node: asyncio.subprocess.Process | None = None
        self._listening = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def resolve(self) -> str:
        return holder(self.root, self.name, self.alias)

    async def reload(self) -> dict:
        """Follow the alias: fetch the holder's bundle and have Node switch to it."""
        async with self._reload_lock:
            if self.url is None:
                return {"reloaded": False, "error": "not serving"}
            try:
                version = await asyncio.to_thread(self.resolve)
                if version == self.version:
                    print(f"reload: {self.name}@{self.alias} is still v{version}; nothing to do",
                          file=sys.stderr, flush=True)
                    return {"reloaded": False, "version": version}
                version, bundle = await asyncio.to_thread(fetch_bundle, self.root, self.name, self.alias)
                outcome = await asyncio.to_thread(self._post_reload, bundle)
            except Exception as error:  # the registry, the download or Node refused: keep serving
                outcome = {"reloaded": False, "error": f"{type(error).__name__}: {error}"}
            if not outcome.get("reloaded"):
                print(f"reload of {self.name}@{self.alias} failed, still serving v{self.version}: "
                      f"{outcome.get('error')}", file=sys.stderr, flush=True)
                return outcome
            print(f"reloaded {self.name} v{self.version} -> v{version}", flush=True)
            self.version = version
            return outcome

    def _post_reload(self, bundle: Path) -> dict:
        request = urllib.request.Request(f"{self.url}/admin/reload", json.dumps({"bundle": str(bundle)}).encode(),
                                         {"Content-Type": "application/json", "X-Kit-Admin-Token": self.token})
        try:
            with urllib.request.urlopen(request, timeout=RELOAD_SECONDS) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:  # 500: Node could not load the bundle
            return json.loads(error.read() or b"{}") or {"reloaded": False, "error": str(error)}

    async def run(self) -> int:
        """Serve until Node exits (SIGTERM / SIGINT are passed on to it); Node's exit code."""
        self.version, bundle = await asyncio.to_thread(fetch_bundle, self.root, self.name, self.alias)
        print(f"serving {self.name} v{self.version} ({self.name}@{self.alias}) from {bundle}", flush=True)
        command = serve_command(bundle, self.port, self.host, **self.options)
        self.node = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, env={**os.environ, "KIT_EDGE_ADMIN_TOKEN": self.token},
            preexec_fn=_stop_with_parent)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_node)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        self._spawn(self._relay_output())
        if self.follow_interval or self.follow_webhook:
            self._spawn(self._follow())
        try:
            return await self.node.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _follow(self) -> None:
        await self._listening.wait()
        from kit import store

        await follow(self.name, self.alias, self.resolve, lambda: self.version, self.reload,
                     lambda: self.node.returncode is not None, self.follow_interval, self.follow_webhook,
                     lambda: store.client(self.root))

    async def _relay_output(self) -> None:
        """Node's stdout to ours; its `listening on URL` line tells where to POST reloads."""
        async for line in self.node.stdout:
            text = line.decode(errors="replace")
            if self.url is None and text.startswith("listening on "):
                self.url = text.split()[2]
                self._listening.set()
            sys.stdout.write(text)
            sys.stdout.flush()

    def _stop_node(self) -> None:
        if self.node.returncode is None:
            self.node.send_signal(signal.SIGTERM)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _stop_with_parent() -> None:
    """In the Node child before exec (Linux): SIGTERM it if this process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(root: Path, name: str, alias: str, port: int, host: str = "127.0.0.1",
          follow_interval: float | None = None, follow_webhook: str | None = None, **options) -> int:
    """Run the edge server until SIGTERM / SIGINT; returns Node's exit code."""
    return asyncio.run(EdgeServer(root, name, alias, port, host, follow_interval, follow_webhook, **options).run())
