"""A small pool of nameko RPC proxies for the Flask side (design §13).

A `ClusterRpcProxy` opens a connection and a reply queue when it starts, and is single-threaded:
one per HTTP request would be slow and leak queues under load, one shared by every greenthread
would mix up replies. The pool starts proxies lazily, up to `size`, lends each to one caller at a
time, and throws away a proxy whose call failed for any reason other than the remote service's
own error (its connection may be broken).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

from eventlet.queue import Empty, LightQueue
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.refusals import SubmissionRefused

log = logging.getLogger(__name__)
# What a remote service raised and sent back: the call went through, so the proxy is fine.
# (A refusal registered with nameko, `SubmissionRefused`, arrives as itself, not as a
# `RemoteError`.)
ANSWERED = (RemoteError, SubmissionRefused)


class RpcPool:
    """Lend started `ClusterRpcProxy`s to callers, one caller at a time per proxy."""

    def __init__(self, config: dict, size: int = 4, timeout: float = 10):
        self.config = config
        self.size = size
        self.timeout = timeout
        self._idle: LightQueue = LightQueue()
        self._made = 0
        self._all: list[ClusterRpcProxy] = []

    def _checkout(self) -> tuple[ClusterRpcProxy, Any]:
        try:
            return self._idle.get_nowait()
        except Empty:
            pass
        if self._made < self.size:
            self._made += 1
            try:
                holder = ClusterRpcProxy(self.config, timeout=self.timeout)
                proxy = holder.start()
            except Exception:
                self._made -= 1
                raise
            self._all.append(holder)
            return holder, proxy
        return self._idle.get(timeout=self.timeout)

    def _discard(self, holder: ClusterRpcProxy) -> None:
        self._made -= 1
        with contextlib.suppress(ValueError):
            self._all.remove(holder)
        with contextlib.suppress(Exception):  # it is being thrown away because it broke
            holder.stop()

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """`service.method(*args, **kwargs)` over RPC; raises what the remote call raised."""
        holder, proxy = self._checkout()
        try:
            result = getattr(proxy[service], method)(*args, **kwargs)
        except ANSWERED:
            self._idle.put((holder, proxy))  # the service answered: the proxy is fine
            raise
        except BaseException:
            self._discard(holder)
            raise
        self._idle.put((holder, proxy))
        return result

    def close(self) -> None:
        """Stop every proxy (tests; a process simply exits)."""
        for holder in list(self._all):
            with contextlib.suppress(Exception):
                holder.stop()
        self._all.clear()
        self._made = 0
        self._idle = LightQueue()

