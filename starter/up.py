"""``escalate up``: the whole service on embedded defaults (see ``starter.local``)."""

from __future__ import annotations

import sys

from starter.local import cli


def main(argv: list[str] | None = None) -> None:
    cli(sys.argv[2:] if argv is None and sys.argv[1:2] == ["up"] else argv)


if __name__ == "__main__":
    main(sys.argv[1:])
