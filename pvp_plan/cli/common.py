"""Helpers shared by the CLI sub-commands (terminal output only; no clinical logic)."""

from __future__ import annotations

from rich.console import Console

#: stdout console for results; stderr console for progress and warnings.
console = Console()
err_console = Console(stderr=True)
