"""Who may reach the web app from elsewhere, as settings take it (kb/core/settings.py): API keys and the web
origins allowed to embed the chat widget, each a list written as one comma-separated string in the
environment (IPKB_API_KEYS, IPKB_WIDGET_ORIGINS) or as a list in ipkb.toml. Pure checks."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?")
_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{16,}")  # printable ASCII, no space, no comma


def comma_list(value: object) -> object:
    """"a, b" or ["a", "b"] → ["a", "b"] (blank items dropped); anything else is left to be refused."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(v).strip() for v in items if str(v).strip()] if isinstance(items, (list, tuple)) else value


def checked_keys(keys: list[str]) -> list[str]:
    if not all(_KEY.fullmatch(k) for k in keys):
        raise ValueError("expected keys of at least 16 printable ASCII characters, no spaces or commas")
    return keys


def checked_origins(origins: list[str]) -> list[str]:
    """Origins as browsers send them in `Origin`: lower case, no trailing slash."""
    origins = [o.lower().rstrip("/") for o in origins]
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port] "
                             "(https://www.example.gov.cn), no path, no wildcard")
    return origins


ApiKeys = Annotated[list[str], BeforeValidator(comma_list), AfterValidator(checked_keys)]
Origins = Annotated[list[str], BeforeValidator(comma_list), AfterValidator(checked_origins)]
