"""Filters is a plain record of kb.core (kb/core/filters.py); this name stays for the search layer's imports."""
from kb.core.filters import Filters

__all__ = ["Filters"]
