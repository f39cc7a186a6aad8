"""The fleet: many sites, one cluster, one database, one page, aggregated demand response.

Each site stays autonomous; its Mosquitto bridges `hearth/<site>/#` to a clustered broker
(NATS with MQTT + JetStream), `hearth fleet ingest` writes what arrives into PostgreSQL,
`hearth fleet serve` shows every site, `hearth fleet dispatch` splits one DR request into
per-site caps. Nothing here runs on the site's control path (docs/fleet.md).
"""
