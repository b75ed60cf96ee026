"""Routers, one per consumer: risk (collection), events (creditor systems), decisions, ops,
reports (collection)."""
