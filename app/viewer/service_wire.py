"""Messages between the viewer and its codec service: a small pickled header, then raw pixels.

One stream socket joins the two processes. Each frame is 16 bytes of lengths, the pickled
message, then an optional raw payload (the bytes of a uint8 array, whose shape the message
names). Pixels bypass pickle and ``multiprocessing.Connection`` (which reads big messages in
chunks into a BytesIO and copies them again): ``recv_into`` straight into the array that the
receiver keeps moves a 1920x1080 region in about 2 ms on the 2-core CI machine, where
``Connection.recv_bytes_into`` took 11 ms. Torch-free: both processes import this module.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading

import numpy as np

_LENGTHS = struct.Struct("!QQ")  # message bytes, payload bytes


class Channel:
    """One end of the socket. ``send`` may be called from any thread (frames never interleave);
    ``recv`` from one thread only."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: object, payload: np.ndarray | None = None) -> None:
        """Send ``message`` (picklable) and, if given, the bytes of the C-contiguous array
        ``payload`` (the receiver allocates the array the message describes)."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        raw = memoryview(np.ascontiguousarray(payload)).cast("B") if payload is not None else b""
        with self._send_lock:
            self.sock.sendall(_LENGTHS.pack(len(data), len(raw)) + data)
            if len(raw):
                self.sock.sendall(raw)

    def recv(self, allocate=None) -> tuple[object, np.ndarray | None]:
        """The next (message, payload); ``allocate(message, nbytes)`` returns the writable array
        to receive the payload into (default: a flat uint8 array). Raises ``EOFError`` when the
        other end has closed."""
        header = bytearray(_LENGTHS.size)
        self._recv_exact(memoryview(header))
        size, payload_size = _LENGTHS.unpack(header)
        data = bytearray(size)
        self._recv_exact(memoryview(data))
        message = pickle.loads(data)
        payload = None
        if payload_size:
            payload = allocate(message, payload_size) if allocate else np.empty(payload_size, np.uint8)
            view = memoryview(payload).cast("B")
            if len(view) != payload_size:
                raise ValueError(f"payload of {payload_size} bytes does not fit an array of {len(view)}")
            self._recv_exact(view)
        return message, payload

    def _recv_exact(self, view: memoryview) -> None:
        while len(view):
            got = self.sock.recv_into(view)
            if not got:
                raise EOFError("the other end closed the channel")
            view = view[got:]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def array_message(pixels: np.ndarray) -> dict:
    """What the receiver needs to allocate ``pixels``' array."""
    return {"shape": tuple(pixels.shape), "dtype": str(pixels.dtype)}


def allocate_array(message, nbytes: int) -> np.ndarray:
    """``Channel.recv``'s ``allocate`` for messages whose last item is an ``array_message``."""
    spec = message[-1] if isinstance(message, tuple) else {}
    if isinstance(spec, dict) and "shape" in spec:
        return np.empty(spec["shape"], np.dtype(spec["dtype"]))
    return np.empty(nbytes, np.uint8)
