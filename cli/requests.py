"""`retention request ...` and `retention replay`: subject requests for support staff, replay for operators.

Registering needs only the control database and the key (to turn identifiers into keyed tokens); carrying a
request out goes through the `subject_request` Dagster job, so it shows in the Dagster UI like a sensor run.
The terminal shows identifier kinds, never the identifiers themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from cli.display import live_progress
from cli.support import config_or_exit, console, err, fail
from retention.config.catalog import IdentifierKind
from retention.config.keys import KeyError_, Keyring, load_keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettingsError, load_request_settings
from retention.requests.kinds import KIND_TEXT, RequestKind, RequestStatus, kind_heading
from retention.requests.model import SubjectRequest
from retention.requests.receipts import receipt_text
from retention.requests.register import (
    EARLIEST_RECEIVED,
    RequestInputError,
    check_identifiers,
    check_received,
    get_request,
    list_requests,
    parse_request_id,
    register_request,
)
from retention.storage.engines import Estate, EstateError, control_engine, is_demo
from retention.storage.leases import held, request_lease

request_app = typer.Typer(
    no_args_is_help=True,
    help="Subject requests: erasure, marketing objection, access export, restriction; the register and receipts.",
)


Email = Annotated[str | None, typer.Option("--email", help="the person's e-mail address")]


Phone = Annotated[str | None, typer.Option("--phone", help="the person's phone number, any format")]


CustomerNumber = Annotated[str | None, typer.Option("--customer-number", help="the person's customer number")]


Now = Annotated[bool, typer.Option("--now", help="also carry the request out at once and print the receipt")]


Received = Annotated[
    dt.datetime | None,
    typer.Option(
        "--received",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"],
        help="when the request reached us, if earlier than now (the deadline runs from it)",
    ),
]


RequestId = Annotated[str, typer.Argument(metavar="ID", help="the request's number", show_default=False)]
"""Taken as text and checked by `parse_request_id`, so that `-1`, `x` or a 30-digit number get one clear line."""


ID_CONTEXT = {"ignore_unknown_options": True}
"""Lets `-1` reach the id check instead of being read as an unknown option."""


def _request_id(text: str) -> int:
    try:
        return parse_request_id(text)
    except RequestInputError as exc:
        raise fail(str(exc)) from None


def _control(config: EstateConfig) -> sa.Engine:
    url = config.catalog.control_url()
    if not url:
        raise fail(f"no control database URL; set {config.catalog.control_url_env}")
    try:
        return control_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        raise fail(
            f"{config.catalog.control_url_env} holds no usable database URL; set it to a SQLAlchemy URL, "
            "e.g. postgresql+psycopg://user@host/db"
        ) from None


def _database_reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's first line (it names the host, never the password), not SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return textwrap.shorten(lines[0] if lines else type(exc).__name__, 200, placeholder=" …")


@contextmanager
def _register_db(config: EstateConfig) -> Iterator[sa.Engine]:
    """The control database's engine for one command; a database that cannot be reached or used is one line."""
    control = _control(config)
    try:
        yield control
    except sa.exc.SQLAlchemyError as exc:
        raise fail(
            f"the control database cannot be used: {_database_reason(exc)}; check "
            f"{config.catalog.control_url_env} and that the database is running"
        ) from None
    finally:
        control.dispose()


def _keyring(config: EstateConfig) -> Keyring:
    try:
        keyring, notice = load_keyring(demo=is_demo(config.catalog))
    except KeyError_ as exc:
        raise fail(str(exc)) from None
    if notice:
        err.print(f"[yellow]{notice}[/]")
    return keyring


def _local(moment: dt.datetime | None, config: EstateConfig, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if moment is None else moment.astimezone(config.policy.timezone).strftime(fmt)


def _register(
    kind: RequestKind,
    email: str | None,
    phone: str | None,
    customer_number: str | None,
    now: bool,
    received: dt.datetime | None,
) -> None:
    config = config_or_exit()
    given = {
        IdentifierKind.EMAIL: email,
        IdentifierKind.PHONE: phone,
        IdentifierKind.CUSTOMER_NUMBER: customer_number,
    }
    identifiers = {k: v for k, v in given.items() if v is not None}
    tz = config.policy.timezone
    regions = config.catalog.regions()
    when = received.replace(tzinfo=tz) if received is not None else None
    try:  # refused before the key is loaded or any database is opened
        check_identifiers(identifiers, regions)
        check_received(when, tz)
        request_settings = load_request_settings(config)
    except (RequestInputError, RequestSettingsError) as exc:
        raise fail(str(exc)) from None
    keyring = _keyring(config)
    with _register_db(config) as control:
        try:
            request_id = register_request(
                control,
                keyring.subject,
                kind,
                identifiers,
                request_settings,
                tz,
                received_at=when,
                regions=regions,
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        request = get_request(control, request_id)
    assert request is not None
    console.print(
        f"registered request [bold]#{request_id}[/]: {KIND_TEXT[kind]}, identifiers given: "
        f"{', '.join(request.identifier_kinds)}; answer due by {_local(request.deadline, config)}"
    )
    if now:
        _carry_out(request_id, config)
    else:
        console.print(
            "the subject_request_sensor launches it within a minute while `make ui` (the Dagster daemon) runs; "
            f"or run it now: `retention request run {request_id}`"
        )


def _carry_out(request_id: int, config: EstateConfig) -> None:
    from pipelines.runner import execute_request

    started = time.perf_counter()
    with live_progress(console, f"carrying out request #{request_id}") as progress:
        result = execute_request(request_id, progress=progress)
    seconds = time.perf_counter() - started
    with _register_db(config) as control:
        request = get_request(control, request_id)
    assert request is not None
    if request.receipt:
        console.print(receipt_text(request.receipt, config.policy.controller), highlight=False, markup=False)
    status = "[green]done[/]" if request.status is RequestStatus.DONE else f"[red]{request.status.value}[/]"
    console.print(f"request #{request_id} {status} in {seconds:.1f} s (run {result.run_id})")
    if request.status is RequestStatus.FAILED or not result.success:
        if request.outcome:
            err.print(request.outcome, highlight=False, markup=False)
        raise typer.Exit(code=1)


REQUEST_COMMANDS = (
    (
        "erase",
        RequestKind.ERASURE,
        f"{kind_heading(RequestKind.ERASURE)}: delete or pseudonymise everything about the person, except "
        "what the law keeps.",
    ),
    (
        "object-marketing",
        RequestKind.MARKETING_OBJECTION,
        f"{kind_heading(RequestKind.MARKETING_OBJECTION)}: delete subscription, profile and tracking; "
        "suppress from now on.",
    ),
    (
        "access",
        RequestKind.ACCESS,
        f"{kind_heading(RequestKind.ACCESS)}: a zip of JSON and CSV with everything held about the person.",
    ),
    (
        "restrict",
        RequestKind.RESTRICTION,
        f"{kind_heading(RequestKind.RESTRICTION)}: the person's data is only stored; the daily run holds it "
        "until lifted.",
    ),
    (
        "unrestrict",
        RequestKind.LIFT_RESTRICTION,
        f"{kind_heading(RequestKind.LIFT_RESTRICTION)}: the daily run applies the retention schedule to the person "
        "again.",
    ),
)
"""The commands that register a request: each takes the person's identifiers and the same options."""


def _add_register_command(name: str, kind: RequestKind, help_text: str) -> None:
    def register(
        email: Email = None,
        phone: Phone = None,
        customer_number: CustomerNumber = None,
        now: Now = False,
        received: Received = None,
    ) -> None:
        _register(kind, email, phone, customer_number, now, received)

    request_app.command(name, help=help_text)(register)


for _name, _kind, _help in REQUEST_COMMANDS:
    _add_register_command(_name, _kind, _help)


@request_app.command("run", context_settings=ID_CONTEXT)
def run(request_id_text: RequestId) -> None:
    """Carry out a pending or failed request now (through the subject_request job, in-process), or finish one
    whose run was killed, once that run's lease has expired."""
    request_id = _request_id(request_id_text)
    config = config_or_exit()
    with _register_db(config) as control:
        request = get_request(control, request_id)
        now = dt.datetime.now(dt.UTC)
        holders = [lease for lease in held(control, [request_lease(request_id)]) if lease.expires_at > now]
    if request is None:
        raise fail(f"there is no request #{request_id}; `retention request list` shows the register")
    if request.status is RequestStatus.DONE:
        raise fail(f"request #{request_id} is done; `retention request show {request_id}`")
    if holders:
        raise fail(f"request #{request_id} is being carried out by {holders[0].describe(now)}")
    _carry_out(request_id, config)


def _due(request: SubjectRequest, now: dt.datetime) -> str:
    if request.status is RequestStatus.DONE:
        return "[red]answered late[/]" if request.overdue() else "[green]answered[/]"
    if request.overdue(now):
        return f"[bold red]OVERDUE {(now - request.deadline).days + 1} d[/]"
    return f"{(request.deadline - now).days} d left"


@request_app.command("list")
def list_(
    status: Annotated[
        list[RequestStatus] | None, typer.Option("--status", help="only requests with this status (repeatable)")
    ] = None,
) -> None:
    """The register: every request with its deadline; overdue ones marked."""
    config = config_or_exit()
    with _register_db(config) as control:
        requests = list_requests(control, status)
    now = dt.datetime.now(dt.UTC)
    table = Table(title="Subject requests")
    for name in ("id", "kind", "received", "deadline", "status", "due"):
        table.add_column(name, justify="right" if name == "id" else "left", no_wrap=name != "kind")
    table.add_column("outcome", overflow="fold")
    for r in requests:
        table.add_row(
            str(r.request_id),
            r.kind.value.replace("_", " "),
            _local(r.received_at, config, "%Y-%m-%d"),
            _local(r.deadline, config, "%Y-%m-%d"),
            r.status.value,
            _due(r, now),
            textwrap.shorten(r.outcome or "", 60, placeholder=" …"),
        )
    console.print(table)
    overdue = sum(1 for r in requests if r.status is not RequestStatus.DONE and r.overdue(now))
    if overdue:
        console.print(f"[bold red]{overdue} requests are overdue[/] (Art 12(3): one month from receipt)")


@request_app.command("show", context_settings=ID_CONTEXT)
def show(
    request_id_text: RequestId,
    as_json: Annotated[bool, typer.Option("--json", help="print the receipt as JSON")] = False,
) -> None:
    """One request: its state and, once done, the receipt (readable text, or JSON)."""
    request_id = _request_id(request_id_text)
    config = config_or_exit()
    with _register_db(config) as control:
        request = get_request(control, request_id)
    if request is None:
        raise fail(f"there is no request #{request_id}; `retention request list` shows the register")
    if as_json:
        sys.stdout.write(
            json.dumps(request.receipt.document() if request.receipt else {}, indent=2, ensure_ascii=False) + "\n"
        )
        return
    now = dt.datetime.now(dt.UTC)
    console.print(f"request [bold]#{request.request_id}[/]: {KIND_TEXT[request.kind]}")
    console.print(f"identifiers given: {', '.join(request.identifier_kinds) or 'none'}")
    console.print(f"received {_local(request.received_at, config)}, due by {_local(request.deadline, config)}")
    console.print(f"status: {request.status.value} ({_due(request, now)}), attempt {request.attempt}")
    if request.completed_at:
        console.print(f"completed {_local(request.completed_at, config)}")
    if request.outcome:
        console.print(f"outcome: {request.outcome}", highlight=False, markup=False)
    if request.receipt:
        console.print("")
        console.print(receipt_text(request.receipt, config.policy.controller), highlight=False, markup=False)


def replay_command(
    source: Annotated[str, typer.Option("--source", help="the restored source, as named in the catalog")],
    since: Annotated[
        dt.datetime | None,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d"],
            help="the day the backup was taken, YYYY-MM-DD (a check only: what the restored database lacks is "
            "replayed, from before this day too)",
        ),
    ] = None,
) -> None:
    """After restoring a backup: re-apply every erasure and pseudonymisation the ledger recorded that the
    restored database lacks (its marker table says which)."""
    from retention.requests.replay import ReplayError, replay_source

    config = config_or_exit()
    today = dt.datetime.now(config.policy.timezone).date()
    if since is not None and not EARLIEST_RECEIVED <= since.date() <= today:
        when = "in the future" if since.date() > today else f"before {EARLIEST_RECEIVED}"
        raise fail(f"--since {since.date()} is {when}; give the day the backup was taken, YYYY-MM-DD")
    keyring = _keyring(config)
    try:
        estate = Estate.connect(config.catalog)
    except EstateError as exc:
        raise fail(str(exc)) from None
    if source not in estate.sources:
        estate.dispose()
        raise fail(f"unknown source {source!r}; the catalog has {', '.join(estate.sources)}")
    assert estate.control is not None
    started = time.perf_counter()
    try:
        with console.status(f"replaying the ledger onto {source}") as status:
            result = replay_source(
                config,
                source,
                estate.sources[source],
                estate.control,
                keyring,
                since.date() if since is not None else None,
                run_id=f"replay-{uuid.uuid4()}",
                progress=lambda m: status.update(m),
            )
    except ReplayError as exc:
        raise fail(str(exc)) from None
    finally:
        estate.dispose()
    if result.since_was_late:
        console.print(
            f"[yellow]the {source} database lacked batches from before --since {since.date() if since else ''}: "
            f"replayed from {result.since}, the day of the first one, so that nobody erased comes back[/]"
        )
    table = Table(title=f"Replay onto {source} since {result.since}")
    for name in ("table", "deleted", "updated", "not in the restored database", "subject mismatch"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for name, t in result.tables.items():
        table.add_row(name, str(t.deleted), str(t.updated), str(t.missing), str(t.mismatched))
    console.print(table)
    console.print(
        f"{result.batches_replayed} batches replayed, {result.batches_already_there} already in the restored "
        f"database, {result.recovered_batches} interrupted batches finished, in {time.perf_counter() - started:.1f} s"
    )
    if result.mismatched:
        raise fail(
            f"{result.mismatched} rows were not changed because the restored row belongs to another person than the "
            "ledger says; check that the right database was restored"
        )
