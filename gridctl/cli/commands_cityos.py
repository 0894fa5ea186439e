"""``gridctl cityos``: the block's open-data feed for a city data platform (FIWARE NGSI-LD).

``export`` writes the entities of a range of settled periods to a file (key-values or
normalized); ``push`` queues them in the ledger's city outbox and upserts them to the broker of
the site's ``cityos`` section. Every entity is validated offline against the vendored Smart
Data Models schemas first. Exit codes: 0 ok, 1 the broker failed or refused, 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gridctl.cli.commands_settle import _existing_ledger, _ledger_failure, _site, _sole_writer, _time
from gridctl.cli.common import EXIT_CONFIG, EXIT_RUNTIME, fail

cityos_app = typer.Typer(
    help="Publish block aggregates per 30-minute period as NGSI-LD entities (FIWARE Smart Data Models).",
    no_args_is_help=True,
)


@cityos_app.command("export")
def export(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file"),
    config: Path = typer.Option(..., "--config", "-c", help="site file (location, members, cityos section)"),
    start: str | None = typer.Option(None, "--from", help="first period start (ISO; JST if no offset)"),
    end: str | None = typer.Option(None, "--to", help="end of the range (exclusive)"),
    form: str = typer.Option("normalized", "--format", help="keyvalues | normalized"),
    out: Path = typer.Option(..., "--out", help="JSON file to write (an array of entities)"),
) -> None:
    """Write the feed's entities of a range of settled periods to a JSON file."""
    from gridctl.cityos.build import feed_site
    from gridctl.cityos.feed import FeedError, check_all, entities_from_ledger
    from gridctl.cityos.render import FORMS, render
    from gridctl.ledger import LedgerError

    if form not in FORMS:
        raise fail(f"--format '{form}' is not one of {', '.join(FORMS)}", EXIT_CONFIG)
    site = _site(config)
    begin, finish = _time(start, "--from"), _time(end, "--to")
    try:
        with _existing_ledger(ledger_path, site.site.id, read_only=True) as ledger:
            entities = entities_from_ledger(site, feed_site(site), ledger, begin, finish)
        docs = [render(e, form) for e in entities]
        check_all(docs, form)
    except FeedError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(docs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc.strerror}", EXIT_RUNTIME) from None
    typer.echo(f"wrote {len(docs)} entities ({len(docs) - 1 if docs else 0} measurements, {form}) to {out}")


@cityos_app.command("push")
def push(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file"),
    config: Path = typer.Option(..., "--config", "-c", help="site file with a cityos section"),
    start: str | None = typer.Option(None, "--from", help="re-send from this period start (ISO; JST if no offset)"),
    end: str | None = typer.Option(None, "--to", help="end of the re-sent range (exclusive)"),
    attempts: int = typer.Option(5, "--attempts", min=1, max=100, help="tries while the broker fails transiently"),
) -> None:
    """Queue new (or, with --from/--to, the given) periods and upsert the city outbox to the broker."""
    from gridctl.cityos.build import feed_site
    from gridctl.cityos.feed import FeedError, queue_changes, queue_range, ship, transport_from_site
    from gridctl.ledger import LedgerError, OutboxTarget
    from gridctl.sinks import SinkError

    site = _site(config)
    if site.cityos is None:
        raise fail(f"{config}: the cityos section is not configured", EXIT_CONFIG)
    begin, finish = _time(start, "--from"), _time(end, "--to")
    try:
        transport = transport_from_site(site.cityos)
        with _existing_ledger(ledger_path, site.site.id) as ledger, _sole_writer(ledger_path):
            feed = feed_site(site)
            if begin is None and finish is None:
                queued = queue_changes(site, feed, ledger)
            else:
                queued = queue_range(site, feed, ledger, begin, finish)
            try:
                result = ship(ledger, transport, site.cityos.batch_size, attempts)
            except SinkError as exc:
                left = ledger.outbox_backlog(OutboxTarget.CITYOS)[0]
                raise fail(f"{exc} ({left} entities kept in the city outbox)", EXIT_RUNTIME) from None
    except FeedError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    refused = f", {result.rejected_rows} refused (kept in cityos_outbox_rejected)" if result.rejected_rows else ""
    typer.echo(f"queued {queued} entities, upserted {result.shipped_rows} to {transport.description}{refused}")


def register(app: typer.Typer) -> None:
    app.add_typer(cityos_app, name="cityos")
