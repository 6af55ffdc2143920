"""What every command of the CLI shares: the consoles, failing with a clear message, loading the configuration."""

from __future__ import annotations

import typer
from rich.console import Console

from retention.config import settings
from retention.config.loading import EstateConfig
from retention.config.problems import ConfigError

console = Console()


err = Console(stderr=True, soft_wrap=True)  # an error is one line in a log, never cut where the terminal ends


def fail(message: str) -> typer.Exit:
    """Print the message on stderr and return the exit to raise (code 1)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def config_or_exit(*, databases: bool = True) -> EstateConfig:
    """The configuration checked by the one validation pass (the databases too, unless the command is about
    to create them), or exit with every problem."""
    from retention.storage.preflight import preflight

    try:
        return preflight(settings.catalog_path(), settings.policy_path(), databases=databases).valid()
    except ConfigError as exc:
        raise fail(str(exc)) from None
