"""The `ravelive` command line: a thin click group.

Each command parses its options, calls one library function, and turns a
RaveliveError into one line on stderr and exit status 1. Heavy imports (torch,
sounddevice) happen inside the commands so `ravelive --help` stays instant.
"""

import functools
import logging

import click

from ravelive import __version__
from ravelive.errors import RaveliveError


def reports_errors(command):
    """Turn a RaveliveError raised by `command` into one clear line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RaveliveError as error:
            raise click.ClickException(str(error)) from error

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ravelive")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Play neural audio models (RAVE / nn~ streaming exports) live."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON instead of a table.")
@reports_errors
def info(model: str, as_json: bool) -> None:
    """Describe MODEL (.ts): methods and labels, attributes and values, sample rate, batch support."""
    from ravelive.models.info import model_info

    click.echo(model_info(model, as_json=as_json))
