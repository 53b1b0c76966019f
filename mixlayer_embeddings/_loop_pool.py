"""An owned ``httpx.AsyncClient`` bound to one event loop, and closed on that loop.

Its sockets are transports of that loop and can only be closed while that loop runs. An event
loop's shutdown (``asyncio.run``, pytest-asyncio, ``Runner.close``) closes every async generator
still alive on it and waits for them, after it has cancelled the remaining tasks; so the guard,
parked on its first ``yield`` and held alive in ``_POOLS``, closes the pool there, before the
loop is gone. A pool given up earlier (its client dropped, released, or moved to another loop)
is marked ``orphaned`` and closed by the next pool that starts on the same loop, inside that
caller's task: a close task of our own could be cancelled by a shutdown half-way, leaving
sockets that nothing can close any more.

A closed pool forgets itself and its loop, so nothing here keeps an ended loop, or its pool,
alive; a client holds one ``PoolSlot`` (and one finalizer) whatever the number of loops it met.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any, Generic, TypeVar

import httpx

__all__ = ["LoopBinding", "LoopPool", "PoolSlot"]

GateT = TypeVar("GateT")


class LoopPool:
    def __init__(self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.http = http
        self._loop = weakref.ref(loop)
        self.orphaned = False
        self.guard = self._guard()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop()

    async def _guard(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            try:
                await self.http.aclose()
            finally:
                self._forget()

    def _forget(self) -> None:
        loop = self._loop()
        if loop is not None:
            pools = _POOLS.get(loop)
            if pools is not None:
                pools.discard(self)

    async def start(self) -> None:
        loop = self._loop()
        if loop is None:  # pragma: no cover - the caller runs on this loop
            raise RuntimeError("the pool's event loop is gone")
        pools = _POOLS.setdefault(loop, set())
        for old in [pool for pool in pools if pool.orphaned]:
            pools.discard(old)
            await old.guard.aclose()
        await self.guard.__anext__()
        pools.add(self)

    def close_soon(self) -> None:
        """Give the pool up; safe from any thread and from a finalizer (it only sets a flag)."""
        self.orphaned = True

    async def aclose(self) -> None:
        self._forget()
        await self.guard.aclose()


class PoolSlot:
    """The one pool a client has open now. The client's single finalizer gives up whatever
    pool the slot holds when the client is dropped, so pools of earlier loops are not kept."""

    def __init__(self) -> None:
        self.pool: LoopPool | None = None

    def replace(self, pool: LoopPool | None) -> LoopPool | None:
        old, self.pool = self.pool, pool
        return old

    def release(self) -> None:
        pool = self.replace(None)
        if pool is not None:
            pool.close_soon()


class LoopBinding(Generic[GateT]):
    """An async client's tie to the event loop it runs on: that loop's gate and, when the
    client owns its http client, the pool bound to that loop.

    Frameworks call async methods from whichever loop is running (``asyncio.run`` per call is
    common), and connections made on a closed loop cannot be reused: a new loop gets a new gate
    and a new owned pool, the old pool being given up to its own loop. The gate is per client
    and loop, so concurrent calls share ``max_concurrency`` instead of multiplying it.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        owned: bool,
        http_kwargs: dict[str, Any],
        new_gate: Callable[[], GateT],
    ) -> None:
        self.http = http
        self.owned = owned
        self._http_kwargs = http_kwargs
        self._new_gate = new_gate
        self.gate = new_gate()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slot = PoolSlot()

    async def bind(self) -> GateT:
        """The gate of the running loop (binding the client to it first, if it is new)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self.gate = self._new_gate()
                if self.owned:
                    self._slot.release()
                    self.http = httpx.AsyncClient(**self._http_kwargs)
            self._loop = loop
            if self.owned:
                pool = LoopPool(self.http, loop)
                await pool.start()
                self._slot.replace(pool)
        return self.gate

    def on_running_loop(self) -> bool:
        """Unused, or last used on the running loop."""
        return self._loop is None or self._loop is asyncio.get_running_loop()

    async def aclose(self) -> None:
        if not self.owned:
            return
        pool = self._slot.replace(None)
        if pool is not None and pool.loop is asyncio.get_running_loop():
            await pool.aclose()
            return
        if pool is not None:
            pool.close_soon()
        await self.http.aclose()

    def release(self) -> None:
        """Give the owned pool up (safe from any thread, and from a finalizer)."""
        self._slot.release()

    def after_fork(self) -> None:
        """In a forked child: a fresh pool and gate on whatever loop comes next; the parent's
        pool and its sockets are dropped, never closed (they are still the parent's)."""
        if self.owned:
            self.http = httpx.AsyncClient(**self._http_kwargs)
        self._slot = PoolSlot()
        self._loop = None
        self.gate = self._new_gate()


#: The pools open on each live event loop.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[LoopPool]] = (
    weakref.WeakKeyDictionary()
)
