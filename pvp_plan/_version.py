"""Single source of the pvp-plan version (read by pyproject and written into every result)."""

__version__ = "0.1.0"
