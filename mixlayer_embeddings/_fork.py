"""After ``os.fork()``, a child must not use its parent's connections.

A keep-alive connection inherited by a child is one socket shared by two processes: both
sending on it at once interleave requests and answers, and a call can return the other
process's vectors without any error (seen: 28 of 200 calls). Every client registers here; in
a forked child each one gets fresh pools (and fresh locks, which a parent's thread may have
held at the moment of the fork) before it can send anything. The parent's sockets are left to
the parent: the child only drops its references, it never closes or shuts them down.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["register_for_fork"]


class _ForkAware(Protocol):
    def _after_fork(self) -> None: ...


_clients: weakref.WeakSet[_ForkAware] = weakref.WeakSet()


def register_for_fork(client: _ForkAware) -> None:
    _clients.add(client)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
