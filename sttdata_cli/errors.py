"""The one error the CLI shows: a line that says what went wrong and what to do."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    """Shown as `Error: <message>` on stderr, exit status 1, no traceback."""
