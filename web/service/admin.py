"""The admin password of knowledge-base management, rate-limited per client."""
from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable, MutableMapping

from kb.core.errors import AdminError
from kb.core.settings import Settings
from web.attempts import Attempts


class AdminGate:
    """Checks the admin password from the configuration; with none configured, management is off.

    After `admin_max_failures` wrong passwords from one client (its address), every attempt (right or
    wrong) is refused for a wait that doubles with each further failure, up to `admin_lockout_max_seconds`.
    A right password clears the count. `attempts` is where failures are counted (web/attempts.py): in
    memory by default, a file the app's worker processes share under `--workers`."""

    def __init__(self, settings: Settings, attempts: MutableMapping | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.attempts = attempts if attempts is not None else Attempts()  # client -> (failures in a row, locked until)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.web.admin_password)

    def check(self, password: str | None, client: str = "") -> None:
        """Returns when `password` is the admin password and `client` is not locked out; else AdminError."""
        settings = self.settings
        if not self.enabled:
            raise AdminError("知识库管理未启用：请在配置中设置 admin_password")
        now = self._clock()
        with self._lock, self.attempts.locked():
            until = self.attempts.get(client, (0, 0.0))[1]
            if now < until:
                raise AdminError(f"密码错误次数过多，请 {math.ceil(until - now)} 秒后再试")
        # constant time: how much of a guess is right does not show in how long the answer takes
        if not hmac.compare_digest((password or "").encode(), settings.web.admin_password.encode()):
            with self._lock, self.attempts.locked():
                failures = self.attempts.get(client, (0, 0.0))[0] + 1
                until = 0.0
                over = failures - settings.web.admin_max_failures
                if over >= 0:
                    until = now + min(settings.web.admin_lockout_seconds * 2 ** over, settings.web.admin_lockout_max_seconds)
                self.attempts[client] = (failures, until)
            raise AdminError("管理密码不正确" + ("；错误次数过多，请稍后再试" if until else ""))
        with self._lock, self.attempts.locked():
            self.attempts.pop(client, None)
