"""Building blocks shared by the `mission-control` command groups: database options, running
service calls on a database with one-line errors, name validation, plain-text tables.

Guarantees: every failure a user can cause (bad URL, unreachable or unmigrated database, a
refusal of the service layer) becomes one `click.ClickException` line, exit code 1.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from contract.messages import Name
from contract.validation import first_error
from mission_control.db.engine import UnsupportedDatabaseURL, create_engine
from mission_control.db.migrate import ensure_current, upgrade
from mission_control.errors import ServiceError
from mission_control.service.context import ServiceContext
from mission_control.settings import DEFAULT_DB_URL, Settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def db_option(command: F) -> F:
    return click.option(
        "--db",
        "db_url",
        envvar="MISSION_CONTROL_DB_URL",
        default=DEFAULT_DB_URL,
        show_default=True,
        help="Database URL: sqlite:///FILE or postgresql://USER@HOST/DB.",
    )(command)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(command)


def redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def database_error(url: str, error: BaseException) -> click.ClickException:
    reason = getattr(error, "orig", None) or error
    return click.ClickException(f"cannot use database {redacted(url)}: {reason}")


def settings_from(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:  # a MISSION_CONTROL_* variable that is not JSON where needed
        raise click.ClickException(f"invalid setting: {error}") from None
    except ValidationError as error:
        where, message = first_error(error, "settings")
        raise click.ClickException(f"invalid setting {where}: {message}") from None


def run_on_db(db_url: str, work: Callable[[ServiceContext], Awaitable[T]], migrate: bool) -> T:
    """Run `work` on the database; every failure becomes one clear line."""
    # Deferred for start-up time: the application module loads aiohttp and every route.
    from mission_control.app import service_context

    settings = settings_from(db_url=db_url)

    async def main() -> T:
        engine = create_engine(db_url)
        try:
            await (upgrade(engine) if migrate else ensure_current(engine))
            return await work(service_context(settings, engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (ServiceError, UnsupportedDatabaseURL) as error:
        raise click.ClickException(str(error)) from None
    except (DBAPIError, OSError) as error:  # unreachable, refused, or no database at all
        raise database_error(db_url, error) from None


class FiniteFloat(click.ParamType[Any, float]):
    """A number from `low` to `high`: `nan`, `inf` and `1e309` (which Python reads as inf) are
    refused as usage errors, as click's FloatRange does not."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a number from {self.low:g} to {self.high:g}", param, ctx)
        return number


#: Row ids are 32-bit integers on PostgreSQL: larger ones cannot name a row.
ROW_ID = click.IntRange(1, 2**31 - 1)


def name_param(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return TypeAdapter(Name).validate_python(value)
    except ValidationError:
        raise click.BadParameter(
            "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        ) from None


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
