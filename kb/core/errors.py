"""Every error IPKB raises on purpose: one base class, so each command line and the app catch
one type and show its message, which says what went wrong and what to do."""
from __future__ import annotations


class IpkbError(Exception):
    """Base class: the message is meant for people (operators, staff, reviewers)."""


class SettingsError(IpkbError, ValueError):
    """A setting in ipkb.toml or the IPKB_* environment has a bad value or an unknown name."""


class KbError(IpkbError, RuntimeError):
    """The knowledge base is missing, busy or unreadable; the message says what to do."""


class Cancelled(KbError):
    """A build stopped by its cancel button, between pages, files or embedding batches."""


class BuildBusyError(KbError):
    """Another build holds the knowledge base's build lock (another process, or another thread)."""


class EmbeddingError(IpkbError, RuntimeError):
    """The embedding model cannot be loaded or its endpoint failed."""


class LoadError(IpkbError):
    """A source file cannot be read; the message is a one-line reason."""


class LlmError(IpkbError, RuntimeError):
    """The LLM endpoint failed (timeout, HTTP error, refused connection, malformed reply)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # shown to users, e.g. "超时"


class BadTestSetError(IpkbError, ValueError):
    """An evaluation test set that cannot be used; the message names the file and line."""


class AdminError(IpkbError, PermissionError):
    """Knowledge-base management is off, or the password is wrong."""


class UploadError(IpkbError, ValueError):
    """An uploaded file that cannot be accepted; the message says why."""
