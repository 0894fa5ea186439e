"""The city feed's shell: ledger periods to entities, the city outbox, and the NGSI-LD upsert.

Entities are queued in the ledger's own city outbox (:attr:`OutboxTarget.CITYOS`, apart from
InfluxDB's) in normalized form, one per row, and shipped by the same
:class:`~gridctl.sinks.OutboxShipper` as InfluxDB points: in batches, a row deleted only after a
2xx for its batch, exponential back-off, 401/403/404 reported as rejections. An upsert is
idempotent (same id, same content), so a batch sent twice after a crash changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gridctl.cityos.build import FeedSite, build_entities
from gridctl.cityos.model import Entity, aggregate_period
from gridctl.cityos.pseudonym import Pseudonymizer
from gridctl.cityos.render import normalized
from gridctl.cityos.validate import Problem, problems
from gridctl.config import SiteConfig
from gridctl.config.cityos import CityOs
from gridctl.credentials import read_secret
from gridctl.ledger import Ledger, OutboxTarget, OutboxView
from gridctl.sinks import OutboxShipper, SinkError
from gridctl.sinks.shipper import rejection

log = logging.getLogger(__name__)

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
CONTENT_TYPE = "application/ld+json"
#: Ledger state: the last entry seq whose periods are queued for the city.
QUEUED_SEQ_KEY = "cityos.queued_seq"


class FeedError(RuntimeError):
    """The feed cannot run as configured (missing secret, invalid entity); one line."""


def entities_from_ledger(site: SiteConfig, feed: FeedSite, ledger: Ledger, start_utc: dt.datetime | None,
                         end_utc: dt.datetime | None, environ: dict[str, str] | None = None,
                         only: set[dt.datetime] | None = None) -> list[Entity]:
    """The feed's entities of the current settlements of every period in ``[start, end)``
    (of those starting at a time in ``only``, when given); PV production from the ``pv``
    channels of the readings each was settled from (hash-checked with the settlement)."""
    member_types = {node.id: node.member_type for node in site.nodes}
    periods = [aggregate_period(s, member_types, ledger.readings(s.start_utc, revision))
               for s, revision in ledger.settlements(start_utc, end_utc)
               if only is None or s.start_utc in only]
    return build_entities(feed, periods, pseudonymizer(site, environ) if feed.per_member else None)


def pseudonymizer(site: SiteConfig, environ: dict[str, str] | None = None) -> Pseudonymizer:
    """The site's pseudonym function, keyed from the credential store (FeedError if no key)."""
    config = site.cityos or CityOs(broker_url="http://unset.invalid")
    key = read_secret(config.pseudonym_key_credential, config.pseudonym_key_env, environ)
    if not key:
        raise FeedError(f"cityos.per_member needs a pseudonym key: set the "
                        f"'{config.pseudonym_key_credential}' credential or ${config.pseudonym_key_env}")
    try:
        return Pseudonymizer(key, site.site.id)
    except ValueError as exc:
        raise FeedError(f"cityos pseudonym key: {exc}") from None


def check_all(docs: Iterable[dict[str, Any]], form: str) -> None:
    """Raise :class:`FeedError` naming the first problem of any document (and how many more)."""
    found: list[Problem] = [p for doc in docs for p in problems(doc, form)]
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise FeedError(f"entity does not match its Smart Data Model: {found[0]}{more}")


def queue_changes(site: SiteConfig, feed: FeedSite, ledger: Ledger, environ: dict[str, str] | None = None) -> int:
    """Queue the entities of every period settled or corrected since the last call; returns how many.

    The last queued entry is remembered in the ledger's state in the same run, so a second call
    queues nothing new (no duplicates), and a correction is queued again.
    """
    since = int(ledger.state_get(QUEUED_SEQ_KEY, 0))
    changed, head = ledger.changed_periods_since(since)
    rows: list[str] = []
    if changed:
        rows = _checked_rows(entities_from_ledger(site, feed, ledger, changed[0],
                                                  changed[-1] + dt.timedelta(minutes=30), environ, set(changed)))
    count = ledger.enqueue_rows(OutboxTarget.CITYOS, rows)
    ledger.state_put(QUEUED_SEQ_KEY, head)
    return count


def queue_range(site: SiteConfig, feed: FeedSite, ledger: Ledger, start_utc: dt.datetime | None,
                end_utc: dt.datetime | None, environ: dict[str, str] | None = None) -> int:
    """Queue the entities of every period in ``[start, end)`` again (a re-send); returns how many."""
    rows = _checked_rows(entities_from_ledger(site, feed, ledger, start_utc, end_utc, environ))
    return ledger.enqueue_rows(OutboxTarget.CITYOS, rows)


def _checked_rows(entities: list[Entity]) -> list[str]:
    docs = [normalized(e) for e in entities]
    check_all(docs, "normalized")
    return [json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for doc in docs]


class NgsiLdTransport:
    """``POST {broker}/ngsi-ld/v1/entityOperations/upsert`` of a batch of normalized entities.

    Sent as ``application/ld+json`` (each entity carries its ``@context``), with ``Authorization:
    Bearer`` and, when set, ``NGSILD-Tenant``. 201 and 204 acknowledge the batch; 207 (some
    entities refused) is reported as a bad batch (status 400) so the shipper sends its rows one
    by one and parks only the refused ones; 5xx, 408 and 429 are transient; 401, 403 and 404 are
    rejections.
    """

    def __init__(self, broker_url: str, token: str, tenant: str | None = None, timeout_s: float = 10.0) -> None:
        self._endpoint = broker_url.rstrip("/") + UPSERT_PATH
        self._token, self._tenant, self._timeout_s = token, tenant, timeout_s
        self.description = f"ngsi-ld {broker_url}" + (f" tenant={tenant}" if tenant else "")

    def write(self, lines: list[str]) -> None:
        body = ("[" + ",".join(lines) + "]").encode()
        request = urllib.request.Request(self._endpoint, data=body, method="POST")
        request.add_header("Content-Type", CONTENT_TYPE)
        request.add_header("Accept", "application/json")
        request.add_header("Authorization", f"Bearer {self._token}")
        if self._tenant:
            request.add_header("NGSILD-Tenant", self._tenant)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                status, detail = response.status, response.read(2000).decode(errors="replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").strip().replace("\n", " ")
            raise SinkError(f"{self.description}: HTTP {exc.code}: {detail}",
                            exc.code >= 500 or exc.code in (408, 429), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SinkError(f"{self.description}: {getattr(exc, 'reason', exc)}") from None
        if status == 207:
            raise SinkError(f"{self.description}: HTTP 207: some entities refused: {_refused(detail)}",
                            transient=False, status=400)
        if status not in (200, 201, 204):
            raise SinkError(f"{self.description}: HTTP {status}", status >= 500, status)


def _refused(detail: str) -> str:
    try:
        errors = json.loads(detail).get("errors", [])
        return ", ".join(str(e.get("entityId")) for e in errors)[:300] or detail[:300]
    except (ValueError, AttributeError):
        return detail[:300]


def transport_from_site(config: CityOs, environ: dict[str, str] | None = None) -> NgsiLdTransport:
    """The broker transport of a site's ``cityos`` section, token from the credential store."""
    token = read_secret(config.token_credential, config.token_env, environ)
    if not token:
        raise FeedError(f"no NGSI-LD broker token: set the '{config.token_credential}' credential "
                        f"or ${config.token_env}")
    return NgsiLdTransport(config.broker_url, token, config.tenant, config.timeout_s)


@dataclass(frozen=True)
class PushResult:
    """Rows acknowledged by the broker, and rows it refused as malformed (parked for review)."""

    shipped_rows: int
    rejected_rows: int


def ship(ledger: Ledger, transport: NgsiLdTransport, batch_size: int, attempts: int,
         backoff_initial_s: float = 1.0, backoff_max_s: float = 30.0,
         sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """Ship the city outbox, trying up to ``attempts`` times in all while failures are transient.

    Raises the last :class:`SinkError` when the broker rejects the credentials or the target
    (no retry helps) or the attempts run out; unsent rows stay in the outbox.
    """
    shipper = OutboxShipper(OutboxView(ledger, OutboxTarget.CITYOS), transport, batch_size=batch_size,
                            backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s)
    for attempt in range(1, attempts + 1):
        try:
            shipper.drain()
            break
        except SinkError as exc:
            if rejection(exc.status) is not None or attempt == attempts:
                raise
            delay = shipper.retry_delay_s()
            log.warning("city feed push failing, retrying error=%s retry_in_s=%.1f", exc, delay)
            sleep(delay)
    rejected = shipper.rejected_rows
    return PushResult(shipper.status().shipped_rows - rejected, rejected)
