"""``pvp-plan demo``: run on the bundled sample data (provisional: the full plan arrives with issue 4)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Nothing registered yet."""
