"""The viewer's side of the codec service: starts the child process, sends requests, routes answers.

``call`` blocks the thread that makes it (a worker thread: never the GUI thread) until the
service answers, relaying progress and passing the caller's ``cancelled()`` on as a cancel
message. A reader thread receives every answer, pixels straight into their own array, and
hands it to the waiting caller. If the child dies, every waiting call fails at once with
``ServiceStopped`` (a sentence for the window) and the next call starts a new child, so a
crash costs the work in flight and a restart, never a hang. ``stop`` ends the child promptly.

The child is started with ``multiprocessing``'s "spawn" method (a fresh interpreter: never a
fork of a process that runs Qt threads) and talks over a socket pair (``service_wire``). Spawn
normally re-runs the parent's main script in the child; ``_spawn`` hides it, because the child
needs only ``codec_service`` and must not open a second viewer from a script without a
``__main__`` guard (nor import Qt for nothing).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import types

from app.codec.engine.allocator import malloc_environment
from app.codec.errors import CodecError, error_of_kind
from app.codec.files.tiling import Cancelled
from app.viewer import codec_service
from app.viewer.service_wire import Channel, allocate_array

POLL_S = 0.02  # how often a waiting call asks its ``cancelled()``
QUIT_WAIT_S = 3.5  # how long ``stop`` waits, while an export is being written, for the child to exit by itself
QUIT_WAIT_IDLE_S = 0.2  # ... and otherwise (Ctrl+Q must end the viewer within a second): nothing is lost by a kill
WRITING_OPS = frozenset({"encode_photo"})  # requests that write a file: a quit lets them remove their temporary file


class ServiceStopped(CodecError):
    """The codec service ended (it crashed, was killed, or was stopped) before it answered."""


class ServiceError(CodecError):
    """Something unexpected failed inside the service; the message says what, in a sentence."""


def _error(kind: str, text: str) -> Exception:
    """The exception a service error message stands for: its kind is data, never a class name."""
    if kind == "cancelled":
        return Cancelled()
    if kind == "failed":
        return ServiceError(text)
    return error_of_kind(kind, text)


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "its connection broke"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


_main_lock = threading.Lock()


def _spawn(process) -> None:
    """``process.start()`` with the parent's ``__main__`` hidden for the moment it takes (about
    10 ms), so the child runs only its target, and with the allocator policy of a process that
    decodes pieces of every shape in its environment (``allocator.keep_freed_memory``: glibc
    reads part of it only at start). multiprocessing takes no environment of its own, so the
    two variables are in ``os.environ`` for those milliseconds and restored after: a program the
    viewer starts meanwhile (an external editor) would inherit them, which changes only how its
    glibc allocates."""
    with _main_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        extra = malloc_environment("release")
        saved = {name: os.environ.get(name) for name in extra}
        os.environ.update(extra)
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class ServiceClient:
    """One codec service child process at a time, started on the first request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None
        self._channel: Channel | None = None
        self._generation = 0  # bumped at every start: handles from an older child are stale
        self._stopped: set[int] = set()  # generations ended on purpose (not a crash)
        self._pending: dict[int, tuple[int, queue.SimpleQueue]] = {}  # request id -> (generation, answers)
        self._writing = 0  # file-writing calls in flight (under the lock): ``stop`` gives them time
        self._ids = itertools.count(1)
        self._local = threading.local()
        self._crashed = False  # the last child ended without being stopped: the next start is a restart
        self._restart_listeners: list = []  # called (on the starting thread) when a crashed child is replaced

    # ------------------------------------------------------------------ state

    @property
    def generation(self) -> int:
        return self._generation

    def is_running(self, generation: int | None = None) -> bool:
        """Whether a child runs (the one of ``generation``, when given)."""
        with self._lock:
            alive = self._process is not None and self._process.is_alive()
            return alive and (generation is None or generation == self._generation)

    def answered_by(self) -> int:
        """The generation of the child that answered this thread's last ``call`` (for handles)."""
        return getattr(self._local, "generation", 0)

    def pid(self) -> int | None:
        """The child's process id (None when none is running)."""
        with self._lock:
            return self._process.pid if self._process is not None else None

    def add_restart_listener(self, listener) -> None:
        """Call ``listener()`` each time a new child replaces one that crashed (from the thread
        whose request started it: a Qt receiver should be reached through a signal)."""
        with self._lock:
            self._restart_listeners.append(listener)

    def remove_restart_listener(self, listener) -> None:
        with self._lock:
            if listener in self._restart_listeners:
                self._restart_listeners.remove(listener)

    def start(self) -> None:
        """Start the child now if none runs (it then imports torch while the viewer goes on)."""
        with self._lock:
            self._ensure_locked()

    def _ensure_locked(self) -> tuple[Channel, int]:
        if self._process is None:
            ours, theirs = socket.socketpair()
            context = multiprocessing.get_context("spawn")
            process = context.Process(
                target=codec_service.serve, args=(theirs,), daemon=True, name="hyperthumb-codec-service"
            )
            _spawn(process)
            theirs.close()
            self._generation += 1
            self._process, self._channel = process, Channel(ours)
            threading.Thread(
                target=self._read,
                args=(self._channel, process, self._generation),
                daemon=True,
                name="codec-service-reader",
            ).start()
            if self._crashed:
                self._crashed = False
                for listener in list(self._restart_listeners):
                    listener()
        return self._channel, self._generation

    # ------------------------------------------------------------------ requests

    def call(
        self,
        op: str,
        *,
        progress=None,
        cancelled=None,
        abandon: bool = False,
        lane=None,
        generation: int | None = None,
        payload=None,
        **args,
    ):
        """Run ``op`` in the service and return its answer (pixels: ``(array, seconds)``).

        Raises the service's ``CodecError`` (or ``ServiceStopped``), or ``Cancelled`` once
        ``cancelled()`` was true: with ``abandon`` at once (the late answer is dropped; for
        work that writes nothing), else when the service confirms it stopped, so a cancelled
        export is known to have left no file. ``generation``: only the child of that generation
        may answer (the request names a decoder or photo it holds); never start a new one.
        ``payload``: a uint8 array sent as raw bytes after the message (the op gets it as
        ``args["payload"]``, flat), not pickled."""
        rid, answers = next(self._ids), queue.SimpleQueue()
        with self._lock:
            if generation is not None and (self._process is None or generation != self._generation):
                raise ServiceStopped("the codec service restarted since this was loaded; ask again")
            channel, current = self._ensure_locked()
            self._pending[rid] = (current, answers)
            if op in WRITING_OPS:
                self._writing += 1
        try:
            try:
                channel.send(("call", rid, lane if lane is not None else threading.get_ident(), op, args), payload)
            except OSError:
                pass  # the child is gone: the reader is about to say so
            cancel_sent = False
            while True:
                if cancelled is not None and not cancel_sent and cancelled():
                    cancel_sent = True
                    try:
                        channel.send(("cancel", rid))
                    except OSError:
                        pass
                    if abandon:
                        raise Cancelled()
                try:
                    message, payload = answers.get(timeout=POLL_S if cancelled is not None else None)
                except queue.Empty:
                    continue
                kind = message[0]
                if kind == "progress":
                    if progress is not None:
                        progress(message[2], message[3])
                elif kind == "result":
                    self._local.generation = current
                    return message[2]
                elif kind == "pixels":
                    self._local.generation = current
                    return payload, message[2]
                elif kind == "error":
                    raise _error(*message[2:4])
                else:  # "stopped"
                    raise ServiceStopped(message[2])
        finally:
            self._pending.pop(rid, None)
            if op in WRITING_OPS:
                with self._lock:
                    self._writing -= 1

    def post(self, generation: int, op: str, **args) -> None:
        """Send ``op`` without waiting for its answer, only to the child of ``generation``
        (releasing a decoder or a photo: nothing to do if that child is gone)."""
        with self._lock:
            if self._channel is None or generation != self._generation:
                return
            channel = self._channel
        try:
            channel.send(("call", next(self._ids), None, op, args))
        except OSError:
            pass

    def _read(self, channel: Channel, process, generation: int) -> None:
        """The reader thread: answers to their callers until the channel ends."""
        try:
            while True:
                message, payload = channel.recv(allocate_array)
                waiting = self._pending.get(message[1])
                if waiting is not None:
                    waiting[1].put((message, payload))
        except Exception:  # noqa: BLE001 -- EOF, a broken socket or a garbled frame all end this child
            pass
        with self._lock:
            stopped = generation in self._stopped
            if self._generation == generation and self._process is process:
                self._process = self._channel = None  # the next call starts a new child
                self._crashed = not stopped
            waiting = [answers for gen, answers in list(self._pending.values()) if gen == generation]
        process.join(1.0)
        if process.is_alive():  # a garbled channel, not an exit: that child is no use any more
            process.kill()
            process.join(1.0)
        if stopped:
            text = "the codec service was stopped"
        else:
            text = (
                f"the codec service stopped unexpectedly ({_how_it_ended(process.exitcode)}); "
                "it restarts with the next request"
            )
        for answers in waiting:
            answers.put((("stopped", None, text), None))
        channel.close()

    # ------------------------------------------------------------------ stopping

    def stop(self, timeout: float | None = None) -> None:
        """End the child: it cancels its work and exits (at once, unless an export must remove
        its temporary file); killed if it has not gone after ``timeout`` seconds (default: 3.5
        while an export is being written, else 0.2: a child still importing torch reads the quit
        late, and killing it then loses nothing)."""
        with self._lock:
            process, channel = self._process, self._channel
            if process is None:
                return
            if timeout is None:
                timeout = QUIT_WAIT_S if self._writing else QUIT_WAIT_IDLE_S
            self._stopped.add(self._generation)
            self._process = self._channel = None
        try:
            channel.send(("quit",))
        except OSError:
            pass
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(1.0)
        channel.close()
