"""The ``pvp-plan`` command line: a thin adapter over the library.

Each sub-command lives in its own module (``info_cmd``, ``segment_cmd``, ``plan_cmd``,
``batch_cmd``, ``view_cmd``, ``demo_cmd``) exposing ``register(app)``. Library errors
(:class:`pvp_plan.errors.PvpPlanError`) are printed in one or two lines, exit code 2, no traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from pvp_plan import __version__
from pvp_plan.cli import batch_cmd, demo_cmd, info_cmd, plan_cmd, segment_cmd, view_cmd
from pvp_plan.errors import PvpPlanError

app = typer.Typer(
    name="pvp-plan",
    help="CT-based planning for percutaneous vertebroplasty. Decision support only: the operator decides.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (info_cmd, segment_cmd, plan_cmd, batch_cmd, view_cmd, demo_cmd):
    _module.register(app)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pvp-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    """Console-script entry point: run the app, turning pvp-plan errors into a short message and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except PvpPlanError as exc:
        typer.secho(f"pvp-plan: error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("pvp-plan: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive as click exceptions
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
