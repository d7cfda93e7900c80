"""The ``beatspec`` command line.

Exit codes (all commands): 0 success / valid, 1 invalid or check failed, 2 usage error,
4 internal error.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import click

from beatspec import SPEC_VERSION, __version__
from beatspec._cli_redis import connection_options, options_from
from beatspec._cli_run import run_command, status_command
from beatspec._jsontext import MAX_FIELD_BYTES
from beatspec._output import render_json, render_text
from beatspec.rules import RULES
from beatspec.validate import Kind, validate_document

__all__ = ["cli", "main"]

_READ_LIMIT = MAX_FIELD_BYTES * 4


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="beatspec", message=f"%(prog)s %(version)s "
                      f"(spec {SPEC_VERSION})")
def cli() -> None:
    """beatspec: the Celery beat + RedBeat Redis schedule layout as a contract.

    Validate entry documents offline, lint the conformance vectors, list the spec's rules.
    """


def _read(source: str) -> bytes:
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
        return stream.read(_READ_LIMIT + 1)
    path = Path(source)
    if path.is_dir():
        raise click.BadParameter(f"{source!r} is a directory", param_hint="FILE")
    try:
        with path.open("rb") as handle:
            return handle.read(_READ_LIMIT + 1)
    except FileNotFoundError:
        raise click.BadParameter(f"{source!r} does not exist", param_hint="FILE") from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source!r}: {exc.strerror}",
                                 param_hint="FILE") from None


@cli.command()
@click.argument("file", default="-", metavar="[FILE|-]")
@click.option(
    "--kind", type=click.Choice(["auto", *[k.value for k in Kind]]), default="auto",
    show_default=True,
    help="What the document is. auto: an entry if it has a 'definition' member, a meta if it "
    "has only last_run_at/total_run_count, else a definition.",
)
@click.option("--strict", is_flag=True, help="Also fail on NON-STRICT findings (the writer's "
              "canonical form).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--name", default=None, metavar="NAME",
              help="The entry's key suffix (key minus prefix), to check definition.name (DEF-2).")
@click.option("--profile", type=click.Choice(["core", "extended"]), default="core",
              show_default=True, help="Keyspace profile: extended allows solar schedules.")
@click.option("--color/--no-color", default=None, help="Colour the text output (default: only "
              "on a terminal).")
def validate(
    file: str, kind: str, strict: bool, fmt: str, name: str | None, profile: str,
    color: bool | None,
) -> None:
    """Validate a definition, meta, extensions or entry JSON document (offline).

    Reads FILE, or standard input when FILE is '-' or absent. Every finding names the rule it
    breaks, where (a JSON pointer), what was found and how to fix it.

    Exit status: 0 valid, 1 invalid, 2 usage error.
    """
    data = _read(file)
    used, report = validate_document(
        data, None if kind == "auto" else Kind(kind), name=name, profile=profile
    )
    source = "<stdin>" if file == "-" else file
    if fmt == "json":
        render_json(sys.stdout, source, used.value, report, strict=strict, spec=SPEC_VERSION)
    else:
        render_text(sys.stdout, source, used.value, report, strict=strict, color=color)
    sys.exit(0 if report.valid(strict=strict) else 1)


def _zone(name: str, option: str) -> ZoneInfo:
    from beatspec.zones import is_known_zone

    if not is_known_zone(name):
        raise click.BadParameter(f"{name!r} is not an IANA time zone name", param_hint=option)
    return ZoneInfo(name)


def _instant(text: str | None, option: str) -> datetime | None:
    from beatspec._next import parse_instant

    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date and time",
                                 param_hint=option) from None


@cli.command("next")
@click.argument("source", default="-", metavar="[FILE|-|NAME]")
@click.option("--last-run-at", metavar="ISO8601", help="When the entry last ran (default: the "
              "entry's meta, else never).")
@click.option("--now", "now_text", metavar="ISO8601", help="The current time (default: the "
              "clock).")
@click.option("--app-timezone", default="UTC", show_default=True, metavar="TZ",
              help="Celery's timezone setting: the zone crontabs are matched in.")
@click.option("--timezone", "display", default=None, metavar="TZ",
              help="Also show times in this zone (default: the app time zone).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(0, 1000),
              help="How many fire times to list.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--redis", "redis_url", metavar="URL", help="Read entry NAME from this Redis "
              "instead of a file (its meta and stored score too).")
@click.option("--prefix", default="redbeat:", show_default=True, help="Key prefix (with --redis).")
def next_command(
    source: str, last_run_at: str | None, now_text: str | None, app_timezone: str,
    display: str | None, count: int, fmt: str, redis_url: str | None, prefix: str,
) -> None:
    """When does an entry run next, and what score should it have?

    Reads a definition (or an entry with meta) from FILE or standard input, or with --redis the
    entry NAME from a keyspace. Prints whether it is due now, its next fire times in UTC and in
    a chosen zone, the ::schedule score a writer should store and, for an entry in Redis,
    whether the stored score agrees.

    Exit status: 0 computed, 1 invalid entry or a stored score that breaks a MUST, 2 usage
    error, 3 Redis unreachable.
    """
    from beatspec._next import compute_next, entry_inputs
    from beatspec._output import render_next, render_text
    from beatspec.codec import decode_entry

    zone = _zone(app_timezone, "--app-timezone")
    shown = _zone(display, "--timezone") if display else zone
    now = _instant(now_text, "--now") or datetime.now(UTC)
    given_last = _instant(last_run_at, "--last-run-at")
    stored: float | None = None
    if redis_url:
        from beatspec.connection import ConnectionFailed, connect
        from beatspec.keyspace import Keyspace, Layout

        try:
            client = connect(redis_url)
        except ConnectionFailed as exc:
            click.echo(f"beatspec: {exc}", err=True)
            sys.exit(3)
        with client:
            stored_entry = Keyspace(client, Layout(prefix)).read_entry(source)
        if not stored_entry.exists:
            click.echo(f"beatspec: no entry at {stored_entry.key!r} (prefix {prefix!r})", err=True)
            sys.exit(1)
        decoded = decode_entry(stored_entry.fields, name=source, key=stored_entry.key)
        stored, label = stored_entry.score, stored_entry.key
    else:
        data = _read(source)
        used, report = validate_document(data)
        if not report.valid():
            render_text(sys.stdout, source, used.value, report, strict=False, color=None)
            sys.exit(1)
        text = data.decode("utf-8")
        document = json.loads(text)
        fields = document if used is Kind.ENTRY else {"definition": text,
                                                      "meta": '{"last_run_at": null}'}
        decoded = decode_entry(fields)
        label = "<stdin>" if source == "-" else source
    if decoded.value is None:
        render_text(sys.stdout, label, "entry", decoded.report, strict=False, color=None)
        sys.exit(1)
    definition, stored_last, ext_zone = entry_inputs(decoded.value)
    if ext_zone:
        zone = ZoneInfo(ext_zone)
        shown = _zone(display, "--timezone") if display else zone
    result = compute_next(
        definition, last_run_at=given_last or stored_last, now=now, zone=zone, count=count,
        stored_score=stored, check_score=redis_url is not None,
    )
    render_next(sys.stdout, label, result, shown, fmt=fmt)
    failed = result.verdict is not None and not result.verdict.ok
    sys.exit(1 if failed else 0)


@cli.group()
def conformance() -> None:
    """Audit a live keyspace against the spec."""


def _rules_list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip().upper() for p in (value or "").split(",") if p.strip())


@conformance.command("run")
@click.option("--redis", "redis_url", required=True, envvar="BEATSPEC_REDIS_URL", metavar="URL",
              help="redis://, rediss:// or unix:// URL of the server to audit.")
@click.option("--prefix", default="redbeat:", show_default=True, help="The keyspace's prefix.")
@click.option("--profile", type=click.Choice(["core", "extended"]), default=None,
              help="Audit as this profile (default: as the keyspace declares, else core).")
@click.option("--app-timezone", default="UTC", show_default=True, metavar="TZ",
              help="Celery's timezone: crontab scores are judged in it.")
@click.option("--strict", is_flag=True, help="NON-STRICT findings also fail (exit 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of standard output.")
@click.option("--select", default=None, metavar="RULES",
              help="Only these rules: IDs, families or globs, comma-separated (ZSET,DEF-2).")
@click.option("--ignore", default=None, metavar="RULES", help="Skip these rules (same syntax).")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000),
              help="Keys per pipelined round trip.")
@click.option("--max-details", default=1000, show_default=True, type=click.IntRange(0),
              help="Findings listed per rule and outcome (all are counted).")
@click.option("--workers", default=min(4, os.cpu_count() or 1), show_default="cores, at most 4",
              type=click.IntRange(1, 64), help="Processes for the key pass (keys split by hash).")
@click.option("--verbose", is_flag=True, help="Also list the rules that passed.")
@click.option("--color/--no-color", default=None)
@connection_options
def conformance_run(**kwargs: Any) -> None:
    """Audit the keyspace at --redis: what its writers (in any language) put there, and can
    RedBeat or beatspec serve it safely?

    Read-only by construction: only PING, SCAN, TYPE, HGETALL, ZSCORE, ZSCAN, ZCARD, SSCAN, GET,
    PTTL and INFO, pipelined in bounded batches; it runs under a read-only ACL user.

    Exit status: 0 conformant, 1 a FAILED finding (or NON-STRICT with --strict), 2 usage error,
    3 Redis unreachable or authentication failed, 4 internal error, 5 nothing found under the
    prefix.
    """
    from beatspec.audit import AuditOptions, RuleFilter, run_audit
    from beatspec.audit._report import render_json, render_junit, render_text
    from beatspec.connection import ConnectionFailed, connect, redact
    from beatspec.keyspace import Keyspace, Layout

    options = options_from(kwargs)
    url, prefix, fmt = kwargs["redis_url"], kwargs["prefix"], kwargs["fmt"]
    _zone(kwargs["app_timezone"], "--app-timezone")
    if not prefix:
        raise click.BadParameter("the prefix must not be empty", param_hint="--prefix")
    try:
        client = connect(url, options)
    except ConnectionFailed as exc:
        click.echo(f"beatspec: {exc}", err=True)
        sys.exit(3)
    keyspace = Keyspace(client, Layout(prefix))
    audit_options = AuditOptions(
        profile=kwargs["profile"], app_timezone=kwargs["app_timezone"], batch=kwargs["batch"],
        max_details=kwargs["max_details"], workers=kwargs["workers"],
        rules=RuleFilter(_rules_list(kwargs["select"]), _rules_list(kwargs["ignore"])),
    )
    import redis

    try:
        with _progress(enabled=sys.stderr.isatty()) as progress:
            result = run_audit(keyspace, audit_options, progress)
    except redis.RedisError as exc:
        click.echo(f"beatspec: Redis error during the audit: {exc}", err=True)
        sys.exit(3)
    finally:
        client.close()
    if result.empty:
        _nothing_found(keyspace, prefix)
        sys.exit(5)
    target = redact(url)
    stream = open(kwargs["output"], "w", encoding="utf-8") if kwargs["output"] else sys.stdout  # noqa: SIM115
    try:
        if fmt == "json":
            render_json(stream, result, target=target, strict=kwargs["strict"],
                        spec=SPEC_VERSION, version=__version__,
                        app_timezone=kwargs["app_timezone"])
        elif fmt == "junit":
            render_junit(stream, result, target=target, strict=kwargs["strict"])
        else:
            render_text(stream, result, target=target, strict=kwargs["strict"],
                        color=kwargs["color"], verbose=kwargs["verbose"])
    finally:
        if stream is not sys.stdout:
            stream.close()
    sys.exit(0 if result.conformant(strict=kwargs["strict"]) else 1)


def _nothing_found(keyspace: Any, prefix: str) -> None:
    click.echo(f"beatspec: nothing found under the prefix {prefix!r}; a mistyped prefix must not "
               "pass", err=True)
    hints = (
        ("*::schedule", "RedBeat schedules under other prefixes"),
        ("redbeat:schedule", "RedBeat <= 0.8 or prefix 'redbeat' without the colon, or the "
                             "celery-rs RedBeat port"),
        ("tasks:meta:*", "celerybeat-redis (a different layout, not RedBeat's)"),
    )
    try:
        for pattern, what in hints:
            found = keyspace.probe(pattern)
            if found:
                click.echo(f"  found {', '.join(repr(k) for k in found)}: {what}", err=True)
    except Exception:
        pass


class _progress:
    """A spinner with counts on stderr, only when stderr is a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda stage, done: None
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  transient=True)
        self._progress.__enter__()
        self._task = self._progress.add_task("scanning")

        def update(stage: str, done: int) -> None:
            self._progress.update(self._task, description=f"{stage}: {done:,}")

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


@cli.command("rules")
@click.option("--kind", "rule_kind", default=None,
              type=click.Choice(sorted({r.kind for r in RULES.values()})),
              help="Only rules of this kind.")
def rules_command(rule_kind: str | None) -> None:
    """List the rules of the spec: ID, level, kind and summary."""
    for rule in RULES.values():
        if rule_kind is None or rule.kind == rule_kind:
            click.echo(f"{rule.id:<9} {rule.level.value:<6} {rule.kind:<9} {rule.summary}")


@cli.group()
def vectors() -> None:
    """Work with the conformance vectors."""


@vectors.command("check")
@click.argument("root", required=False, type=click.Path(exists=True, file_okay=False,
                                                        path_type=Path))
def vectors_check(root: Path | None) -> None:
    """Lint the conformance vectors: schema-valid case files, unique descriptions, known rule
    IDs, every document rule covered, and every vector's verdict reproduced by this
    implementation.

    ROOT defaults to the vectors shipped with beatspec. Exit status: 0 clean, 1 problems found.
    """
    from beatspec.vectors import check_vectors

    result = check_vectors(root)
    for line in result.problems:
        click.echo(f"problem: {line}", err=True)
    for line in result.notes:
        click.echo(line)
    sys.exit(1 if result.problems else 0)


cli.add_command(run_command)
cli.add_command(status_command)


def main() -> None:
    """Console-script entry point: usage errors exit 2, unexpected errors exit 4 (no traceback)."""
    try:
        cli.main(prog_name="beatspec", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError | click.BadParameter) else exc.exit_code)
    except SystemExit:
        raise
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        click.echo(f"beatspec: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("please report this with the input that caused it", err=True)
        sys.exit(4)
