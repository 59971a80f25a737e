"""Loopback TCP proxies that make real outages of a backend: FlakyProxy cuts the first N connections,
OutageProxy takes the backend's port away for as long as a test says and gives it back."""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to `target`, closing the first `drop` connections at once."""

    def __init__(self, target: str, drop: int) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.remaining_drops = drop
        self.dropped = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.remaining_drops > 0:
                self.remaining_drops -= 1
                self.dropped += 1
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class OutageProxy:
    """Forwards one fixed loopback port to `target` until `stop()`: then the port is closed and every connection
    through it reset, as a stopped server's would be, until `start()` opens the same port again. The backend
    behind it keeps its data, as an emulator restarted with its data would."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_loopback_port()
        self.connections_cut = 0
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> OutageProxy:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on the port again (create_server sets SO_REUSEADDR: the port is free to bind at once)."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the port (new connections are refused) and reset every open connection."""
        if self._listener is not None:
            try:  # wakes the accept() blocked on it (close alone leaves it accepting, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            open_now, self._connections = self._connections, set()
        for sock in open_now:
            try:  # linger 0: close sends RST, as a killed process's sockets do
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass
        self.connections_cut += len(open_now) // 2

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=FlakyProxy._pump, args=(src, dst), daemon=True).start()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
