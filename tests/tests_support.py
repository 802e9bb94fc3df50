"""Paths shared by test modules (fixtures live in conftest.py)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPLY_LETTER = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"
