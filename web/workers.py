"""`python app.py --workers N`: N app worker processes behind one port.

Gradio's queue keeps each browser session in the memory of one process (queue/join and the SSE
stream queue/data must meet in it), so the port is not simply shared by N copies of the app. This
process is the front: it listens on the public port and relays every request (web/proxy.py) to one
of N worker processes (web/worker.py, each the whole app with its own e5) listening on Unix sockets
in a private folder. The JSON API goes to the least busy worker; a browser, or a gradio_client, stays
with one worker by a cookie. The pool here starts the workers, waits until they answer, restarts one
that dies, and stops them all with the front (Ctrl-C, SIGTERM).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from kb.core.settings import Settings, settings_values
from web.serving import forwarded_options
from web.worker import SETTINGS_ENV

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 600.0  # loading e5 and the indexes: seconds on a quiet machine, minutes on a busy one


class Worker:
    """One worker process as the front sees it."""

    def __init__(self, index: int, socket: Path):
        self.index, self.socket = index, socket
        self.proc: subprocess.Popen | None = None
        self.ready = False  # answers /api/health; False while (re)starting, or after a failed connection
        self.busy = 0  # requests the front has in flight with it
        self.served = 0
        self.restarts = 0
        self.crashes = 0  # deaths in a row before it became ready again: the restart waits longer each time

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


class WorkerPool:
    def __init__(self, settings: Settings, run_dir: Path, build: bool = False):
        self.settings, self.run_dir = settings, run_dir
        self.workers = [Worker(i, run_dir / f"worker-{i}.sock") for i in range(settings.web.workers)]
        self._build = build  # the background build of `--build` (or of a new knowledge base): worker 0, once
        self._turn = 0
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    # --- choosing a worker (the proxy, in its event loop)
    def ready(self) -> list[Worker]:
        return [w for w in self.workers if w.ready]

    def least_busy(self) -> Worker | None:
        """The ready worker with the fewest requests in flight; ties taken in turn."""
        ready = self.ready()
        if not ready:
            return None
        self._turn += 1
        return min(ready, key=lambda w: (w.busy, (w.index - self._turn) % len(self.workers)))

    def first_ready(self) -> Worker | None:
        ready = self.ready()
        return ready[0] if ready else None

    def get(self, index: int) -> Worker | None:
        return self.workers[index] if 0 <= index < len(self.workers) else None

    def lost(self, worker: Worker) -> None:
        """A connection to it failed: no more requests until the monitor finds it answering again."""
        worker.ready = False

    # --- the processes
    def _spawn(self, worker: Worker, build: bool = False) -> None:
        env = {**os.environ, SETTINGS_ENV: json.dumps(settings_values(self.settings)),
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        command = [sys.executable, "-m", "web.worker", "--index", str(worker.index), "--socket", str(worker.socket),
                   "--run-dir", str(self.run_dir), "--parent", str(os.getpid())] + (["--build"] if build else [])
        # a session of its own: Ctrl-C in the terminal reaches the front only, which stops the workers in turn
        worker.proc = subprocess.Popen(command, env=env, start_new_session=True)
        worker.ready = False

    def start(self) -> None:
        for worker in self.workers:
            self._spawn(worker, build=self._build and worker.index == 0)
        self._monitor = threading.Thread(target=self._watch, name="ipkb-workers", daemon=True)
        self._monitor.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Until every worker answers (True), or the time is up (False: the front serves with those that do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            if all(w.ready for w in self.workers):
                return True
            time.sleep(0.1)
        return False

    def _probe(self, worker: Worker) -> bool:
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(worker.socket)), timeout=5) as client:
                return client.get("http://ipkb-worker/api/health").status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def _watch(self) -> None:
        """Restart a worker that died; mark one ready once it answers."""
        restart_at: dict[int, float] = {}
        while not self._stopping.wait(0.25):
            for worker in self.workers:
                if self._stopping.is_set():
                    return
                if worker.proc is not None and worker.proc.poll() is not None:
                    worker.ready = False
                    now = time.monotonic()
                    if worker.index not in restart_at:
                        worker.crashes += 1
                        delay = min(30.0, 0.5 * 2 ** (worker.crashes - 1))
                        restart_at[worker.index] = now + delay
                        print(f"ipkb: worker {worker.index} (pid {worker.pid}) exited with {worker.proc.returncode}; "
                              f"restarting in {delay:.1f} s", file=sys.stderr)
                    if now >= restart_at[worker.index]:
                        del restart_at[worker.index]
                        worker.restarts += 1
                        self._spawn(worker)
                elif not worker.ready and worker.proc is not None and self._probe(worker):
                    worker.ready, worker.crashes = True, 0

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every worker (each finishes its requests), then SIGKILL what is left after `timeout`."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=10)
        procs = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings, build: bool = False) -> int:
    """Run the front on settings.web.host:port and `settings.web.workers` workers until Ctrl-C or SIGTERM."""
    import uvicorn

    from web.proxy import Proxy

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per relayed request
    run_dir = Path(tempfile.mkdtemp(prefix="ipkb-"))  # mode 0700: the sockets are for this user only
    pool = WorkerPool(settings, run_dir, build=build)
    # SIGTERM as Ctrl-C: the workers are stopped however the front is asked to stop (uvicorn, once it has
    # stopped, raises the signal again with the handler it found: this one)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        pool.start()
        print(f"IPKB starting {settings.web.workers} workers…", file=sys.stderr)
        if not pool.wait_ready():
            print(f"ipkb: only {len(pool.ready())} of {settings.web.workers} workers answer; serving with those",
                  file=sys.stderr)
        server = uvicorn.Server(uvicorn.Config(Proxy(pool, settings), host=settings.web.host, port=settings.web.port,
                                               log_level="warning", timeout_graceful_shutdown=3,
                                               **forwarded_options(settings.web)))
        print(f"IPKB ready: http://{settings.web.host}:{settings.web.port} ({settings.web.workers} workers)", file=sys.stderr)
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0
