"""Wrong admin passwords per client, for the rate limit of `AdminGate` (web/service/admin.py).

One process keeps them in memory (`Attempts`). The app's worker processes (`--workers`) share one
file (`SharedAttempts`), so a client gets no more guesses by reaching several workers: the proxy
spreads browsers over the workers and a browser may pick its worker (a cookie). Both are mappings
client -> (wrong passwords in a row, locked until: time.monotonic(), the same clock in every process),
read and changed inside `locked()`."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path


class Attempts(dict):
    """In memory: one process."""

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        yield


class SharedAttempts(MutableMapping):
    """In a JSON file that several processes read and change, each change under an flock."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._depth = 0
        self._fd: int | None = None
        self._thread_lock = threading.RLock()  # the flock is the process's: its threads take turns first

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    os.close(self._fd)  # releases the flock
                    self._fd = None

    def _read(self) -> dict[str, tuple[int, float]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: (int(v[0]), float(v[1])) for k, v in raw.items()}

    def _write(self, table: dict[str, tuple[int, float]]) -> None:
        with self.locked():
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(table), encoding="utf-8")
            os.replace(tmp, self.path)

    def __getitem__(self, client: str) -> tuple[int, float]:
        return self._read()[client]

    def __setitem__(self, client: str, value: tuple[int, float]) -> None:
        with self.locked():
            self._write({**self._read(), client: (int(value[0]), float(value[1]))})

    def __delitem__(self, client: str) -> None:
        with self.locked():
            table = self._read()
            del table[client]
            self._write(table)

    def __iter__(self):
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def clear(self) -> None:
        with self.locked():
            self._write({})
