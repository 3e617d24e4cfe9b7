"""The gateway: Mercato's public HTTP API in front of the services (docs/api.md).

It owns nothing but idempotency records; it authenticates, validates, forwards to the
services over RPC and answers in JSON with the status of ``errors.mapped_errors``."""
