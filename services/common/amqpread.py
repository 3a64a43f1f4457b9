"""A kombu transport for a connection that takes many small messages: py-amqp reads a frame's
header, payload and end byte with a `recv` each, exactly the bytes it needs (nine per message:
a method, a header and a body frame), each a green socket call under eventlet. This one asks
the socket for up to `CHUNK` bytes and serves the frames from what it got.

Profiled on reporting's 19 queues (`benchmarks.bus_consume`), py-amqp made 9 `recv` calls per
message; with this transport and one ack per batch, the CPU per event taken off the bus fell by
15% (docs/benchmarks.md). Only plain TCP: a TLS connection keeps py-amqp's own transport.
"""
from __future__ import annotations

import errno

from amqp.transport import TCPTransport
from kombu.transport import pyamqp

CHUNK = 65_536


class BufferedTCPTransport(TCPTransport):
    """py-amqp's TCP transport with buffered reads (what it has not served yet is
    `_read_buffer`, as py-amqp's frame reader expects after a timeout)."""

    _buffer: bytes = b""
    _at = 0

    @property
    def _read_buffer(self) -> bytes:
        return self._buffer[self._at:]

    @_read_buffer.setter
    def _read_buffer(self, value: bytes) -> None:
        self._buffer, self._at = value, 0

    def _read(self, n: int, initial: bool = False,
              _errnos: tuple[int, ...] = (errno.EAGAIN, errno.EINTR)) -> bytes:
        """Exactly `n` bytes: from the buffer, refilled by `CHUNK` when short."""
        buffer, at = self._buffer, self._at
        if len(buffer) - at >= n:
            self._at = at + n
            return buffer[at:at + n]
        buffer = buffer[at:]
        try:
            while len(buffer) < n:
                try:
                    got = self._quick_recv(max(n - len(buffer), CHUNK))
                except OSError as exc:
                    if exc.errno in _errnos:  # as py-amqp: interrupted, try again
                        if initial and self.raise_on_initial_eintr:
                            raise TimeoutError() from exc
                        continue
                    raise
                if not got:
                    raise OSError("Server unexpectedly closed connection")
                buffer += got
        except BaseException:
            self._buffer, self._at = buffer, 0  # nothing read is lost: the caller may retry
            raise
        self._buffer, self._at = buffer, n
        return buffer[:n]


class _Connection(pyamqp.Connection):
    def Transport(self, host, connect_timeout, ssl=False, read_timeout=None,  # py-amqp's name
                  write_timeout=None, socket_settings=None, **kwargs):
        if ssl:
            return super().Transport(host, connect_timeout, ssl, read_timeout, write_timeout,
                                     socket_settings, **kwargs)
        return BufferedTCPTransport(host, connect_timeout=connect_timeout,
                                    read_timeout=read_timeout, write_timeout=write_timeout,
                                    socket_settings=socket_settings, **kwargs)


class BufferedTransport(pyamqp.Transport):
    """kombu's py-amqp transport over `BufferedTCPTransport`: `Connection(uri,
    transport=BufferedTransport)`."""

    Connection = _Connection
