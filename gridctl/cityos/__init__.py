"""The city data platform feed (FIWARE NGSI-LD): block aggregates as Smart Data Models entities.

:mod:`~gridctl.cityos.build` makes the entities (pure), :mod:`~gridctl.cityos.render` writes
them in key-values or normalized form, :mod:`~gridctl.cityos.validate` checks them offline
against the vendored schemas, :mod:`~gridctl.cityos.feed` reads the ledger, queues entities in
its city outbox and upserts them to a broker. docs/cityos.md says what is published.
"""
