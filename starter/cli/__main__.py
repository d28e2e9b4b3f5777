"""``python -m starter.cli``: the same as the ``escalate`` command."""

from starter.cli import main

main()
