"""An HTTP endpoint on 127.0.0.1 that answers byte by byte, slower than any deadline.

Each byte arrives well within botocore's read timeout, so only a deadline on the whole call
ends the request. The server stops trickling when the test ends (``stop()``), which also ends
the abandoned call's thread; it never trickles longer than ``MAX_TRICKLE_S`` in any case.
"""

from __future__ import annotations

import socket
import threading
import time

BYTE_EVERY_S = 0.25
MAX_TRICKLE_S = 60.0


class TricklingEndpoint:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopped = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, name="trickle", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(1.0)
            try:
                received = b""
                while b"\r\n\r\n" not in received:  # the request's headers (bodies are small)
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    received += chunk
                self.requests += 1
                body = b'{"never": "finished"}' * 100
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                connection.sendall(head)
                ends = time.monotonic() + MAX_TRICKLE_S
                for byte in body:
                    if self._stopped.wait(BYTE_EVERY_S) or time.monotonic() > ends:
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)
