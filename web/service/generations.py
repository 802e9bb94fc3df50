"""The generation answers come from: its Answerer, opened lazily, swapped whole for a newer generation."""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.answer.answerer import Answerer
    from kb.search.generation import SearchModels

# opens an Answerer on the current generation, reusing the loaded models (embedder, tokenizer) when given
OpenAnswerer = Callable[["SearchModels | None"], "Answerer"]

SWAP_GRACE_S = 60.0  # the old answerer is closed this long after a swap: requests still on it finish first


class Generations:
    """Holds the Answerer of the current generation.

    `open_answerer(models)` opens one on the current generation, reusing `models` (the loaded embedder and
    tokenizer) when given; `current()` is the path of the current generation (the `current` link, moved by
    any process's build). Injected, so that tests need neither e5 nor a knowledge base."""

    def __init__(self, open_answerer: OpenAnswerer, current: Callable[[], Path | None],
                 grace_s: float = SWAP_GRACE_S):
        self.open_answerer, self.current, self.grace_s = open_answerer, current, grace_s
        self._answerer = None
        self._lock = threading.Lock()  # one open or swap at a time

    @property
    def answerer(self) -> Answerer:
        answerer = self._answerer
        if answerer is None:
            with self._lock:
                if self._answerer is None:
                    self._answerer = self.open_answerer(None)
                answerer = self._answerer
        return answerer

    def swap(self) -> bool:
        """Open the current generation, reusing the loaded models, then switch answers over to it; False when
        it is already the one answering (a build's own swap and the watcher's may meet), or nothing is open
        yet (the first answer opens the current one)."""
        with self._lock:
            old, current = self._answerer, self.current()
            if old is None or current is None or current == old.generation.path:
                return False
            self._answerer = self.open_answerer(old.generation.models)
        # requests still running on the old generation finish first
        threading.Timer(self.grace_s, old.close).start()
        return True

    def refresh(self) -> bool:
        """Swap in the current generation if another process built it (`--workers`: every worker sees a
        re-index made by any); True when swapped. A readlink: cheap enough to call every second."""
        current = self.current()
        return current is not None and current != self.answerer.generation.path and self.swap()

    def watch(self, interval: float = 1.0) -> threading.Event:
        """Call `refresh` every `interval` seconds in a daemon thread, until the returned event is set."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(interval):
                try:
                    self.refresh()
                except Exception as exc:  # a generation being replaced again, an unreadable one: next time
                    print(f"ipkb: could not open the new knowledge base generation: {exc}", file=sys.stderr)

        threading.Thread(target=watch, name="ipkb-generation-watch", daemon=True).start()
        return stop

    def close(self) -> None:
        with self._lock:
            answerer, self._answerer = self._answerer, None
        if answerer is not None:
            answerer.close()
