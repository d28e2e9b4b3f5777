"""GOV.UK Frontend's compiled assets from npm (``make assets``: ``node_modules/govuk-frontend``), served
without GOV.UK's own identity: the GDS Transport font is neither referenced nor served (the stylesheet's
``@font-face`` rules are removed and its font stack replaced with the system's), and no crown images or
icons are served. Nothing is downloaded at run time."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from activities.settings import PROJECT_ROOT

GOVUK_DIST = PROJECT_ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"
SYSTEM_FONTS = 'system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif'


class AssetsMissing(RuntimeError):
    pass


def _dist() -> Path:
    if not (GOVUK_DIST / "govuk-frontend.min.css").is_file():
        raise AssetsMissing(
            f"GOV.UK Frontend is not installed ({GOVUK_DIST}): run `make assets` (npm ci) first"
        )
    return GOVUK_DIST


@cache
def stylesheet() -> str:
    css = (_dist() / "govuk-frontend.min.css").read_text()
    css = re.sub(r"@font-face\{[^}]*\}", "", css)
    css = css.replace("GDS Transport,arial,sans-serif", SYSTEM_FONTS).replace("GDS Transport", SYSTEM_FONTS)
    return re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)


@cache
def script() -> str:
    js = (_dist() / "govuk-frontend.min.js").read_text()
    return re.sub(r"//# sourceMappingURL=\S*", "", js)
