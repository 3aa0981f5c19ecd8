"""The data API on every node: a node service (runs while the daemon runs, leader or not).

It opens the node's store, serves `cluster.data.api` over HTTPS on `data_listen` with the
node's certificate, publishes its address (`data/endpoints/<node>`, ephemeral) and, every
second, refreshes the tokens it accepts and the data settings (both read from ZooKeeper: a
change is in force within about a second) and applies forget and remask jobs it has not applied
yet; every minute it deletes what is past each environment's retention.

Guarantees: the store is used from one thread only; a revoked token stops working within a
refresh (about a second); settings that fail to parse leave the last good ones in force (and are
logged), so a damaged config never turns masking off; jobs are applied in order, each recorded
in the store in the same thread right after it ran, and reported under the job's znode.
Does not guarantee: that ingest continues without ZooKeeper for longer than tokens stay cached
(they do stay: ingest keeps working with the last tokens and settings it read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from cluster.aio import cancel_and_wait
from cluster.data import registry
from cluster.data.api import create_app
from cluster.data.settings import DataSettings
from cluster.data.store import MonitoringStore
from cluster.data.tokens import TokenRecord, internal_key
from cluster.errors import ClusterError, ListenError
from cluster.leadership import LeaderContext
from cluster.names import check_address
from cluster.zk.errors import ZooKeeperError
from contract.privacy.detectors import mask_detected
from contract.privacy.rules import apply_rules
from contract.privacy.uri import mask_uri

log = logging.getLogger(__name__)
T = TypeVar("T")
REFRESH_EVERY = 1.0
SWEEP_EVERY = 60.0
DAY = 86400.0


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ListenError(f"cannot load the data API's certificate {cert}: {e}") from e
    return context


class NodeData:
    """The `DataState` the API reads, kept fresh by `DataService`."""

    def __init__(
        self,
        node: str,
        store: MonitoringStore,
        executor: ThreadPoolExecutor,
        internal_key: bytes | None = None,
    ) -> None:
        self.node = node
        self.internal_key = internal_key
        self.store = store
        self._executor = executor
        self._settings = DataSettings()
        self._tokens: dict[str, TokenRecord] = {}

    def settings(self) -> DataSettings:
        return self._settings

    def token(self, token_id: str) -> TokenRecord | None:
        return self._tokens.get(token_id)

    async def run(self, fn: Callable[[MonitoringStore], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self.store)

    def refresh(
        self, settings: DataSettings | None, tokens: list[TokenRecord] | None = None
    ) -> None:
        """Take what could be read; what could not stays as it was."""
        if settings is not None:
            self._settings = settings
        if tokens is not None:
            self._tokens = {t.id: t for t in tokens}


def apply_job(store: MonitoringStore, job: registry.Job, settings: DataSettings) -> dict[str, Any]:
    """Run one forget or remask job against the store (in the store's thread)."""
    if job.kind == "forget" and job.tag_hash:
        result: dict[str, Any] = store.forget(job.env, job.tag_hash)
    elif job.kind == "remask":
        env = settings.environments.get(job.env)
        if env is None:
            result = {"error": f"no environment {job.env}"}
        else:
            rules = env.rules
            uri = any(a.uri_masking for a in env.applications.values())
            result = store.remask(
                job.env,
                lambda text: apply_rules(text, rules),
                (lambda text: mask_uri(mask_detected(text))) if uri else (lambda text: text),
            )
    else:
        result = {"error": f"unknown job {job.kind}"}
    store.mark_done(job.name, result)
    return result


class DataService:
    """A node service (`LeaderService` protocol, started on every node)."""

    name = "data"

    def __init__(
        self, data_dir: Path, listen: str, cert: Path, key: Path, credential: str | None = None
    ) -> None:
        self._data_dir = data_dir
        self._internal_key = internal_key(credential) if credential else None
        self._listen = listen
        self._cert, self._key = cert, key
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="data-store")
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: NodeData | None = None

    async def start(self, ctx: LeaderContext) -> None:
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(self._executor, MonitoringStore, self._data_dir)
        self.state = NodeData(ctx.node, store, self._executor, self._internal_key)
        await self._refresh(ctx)
        host, port = check_address(self._listen)
        runner = web.AppRunner(create_app(self.state), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, host, port, ssl_context=server_context(self._cert, self._key)
            )
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise ListenError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        self._runner = runner
        log.info("node %s serving its data API on https://%s:%d", ctx.node, host, port)
        self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        state, self.state = self.state, None
        if state is not None:
            await state.run(lambda s: s.close())

    async def _run(self, ctx: LeaderContext) -> None:
        swept = 0.0
        while True:
            try:
                await self._refresh(ctx)
                await self._endpoint(ctx)
                await self._jobs(ctx)
                if time.monotonic() - swept > SWEEP_EVERY:
                    await self._sweep()
                    swept = time.monotonic()
            except (ClusterError, ZooKeeperError) as e:
                log.info("data service: ZooKeeper unavailable for now (%s)", type(e).__name__)
            except Exception:
                log.exception("data service step failed")
            await asyncio.sleep(REFRESH_EVERY)

    async def _refresh(self, ctx: LeaderContext) -> None:
        """Tokens first, then the settings, both from ZooKeeper: once a token is accepted,
        every setting changed before it was created is in force too."""
        assert self.state is not None
        tokens = await ctx.blocking(registry.list_tokens, ctx.zookeeper, ctx.paths)
        found = await ctx.blocking(ctx.zookeeper.find, ctx.paths.config)
        settings = None
        try:
            config = json.loads(found[0]) if found is not None and found[0] else {}
            settings = DataSettings.from_config(config if isinstance(config, dict) else {})
        except (ValueError, ClusterError) as e:
            log.warning("data settings unreadable, keeping the last good ones: %s", e)
        self.state.refresh(settings, tokens)

    async def _endpoint(self, ctx: LeaderContext) -> None:
        path = registry.DataPaths(ctx.paths).endpoint(ctx.node)
        if await ctx.blocking(ctx.zookeeper.find, path) is None:
            await ctx.blocking(
                registry.register_endpoint, ctx.zookeeper, ctx.paths, ctx.node, self._listen
            )

    async def _jobs(self, ctx: LeaderContext) -> None:
        state = self.state
        assert state is not None
        done = await state.run(lambda s: s.jobs_done())
        for job in await ctx.blocking(registry.read_jobs, ctx.zookeeper, ctx.paths, done):
            settings = state.settings()
            result = await state.run(partial(apply_job, job=job, settings=settings))
            log.info("applied data job %s (%s %s): %s", job.name, job.kind, job.env, result)
            await ctx.blocking(registry.report_job, ctx.zookeeper, ctx.paths, job, ctx.node, result)

    async def _sweep(self) -> None:
        state = self.state
        assert state is not None
        now = time.time()
        for env in state.settings().environments.values():
            before = now - env.retention_days * DAY
            removed = await state.run(partial(MonitoringStore.sweep, env=env.name, before=before))
            if removed:
                log.info("retention: removed %d rows of %s", removed, env.name)
