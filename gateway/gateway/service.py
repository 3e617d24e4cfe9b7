"""The gateway's entrypoints: the public HTTP API (API.md) and its operations endpoints.

Each one is glue: authenticate if it needs a caller, read and validate the body, call
one service, dump the answer. Failures are raised, and ``web.GatewayHttp`` answers
them with the status of ``errors.mapped_errors``.
"""

from __future__ import annotations

from nameko.timer import timer
from werkzeug.wrappers import Request, Response

from gateway import openapi, probes, schemas
from gateway.auth import Authentication
from gateway.errors import json_response
from gateway.idempotency import Idempotency
from gateway.models import metadata
from gateway.settings import SettingsProvider
from gateway.web import http, no_content, read_json, respond
from mercato.db import Database
from mercato.rpc import TimedRpcProxy
from mercato.service import MercatoService
from mercato.validation import load

PURGE_INTERVAL_SECONDS = 600


class GatewayService(MercatoService):
    """The public API. Dependencies: ``iam`` answers who a token belongs to and owns
    accounts; ``auth`` keeps validated tokens briefly; ``idempotency`` keeps the answers
    to POSTs that carried an Idempotency-Key, in ``db``."""

    name = "gateway"

    db = Database(metadata)
    iam = TimedRpcProxy("iam_agency")
    # /readyz must answer quickly even when iam-agency does not
    iam_probe = TimedRpcProxy("iam_agency", timeout=probes.IAM_PING_TIMEOUT_SECONDS)
    settings = SettingsProvider()
    auth = Authentication()
    idempotency = Idempotency()

    # -- accounts and sign-in ------------------------------------------------------

    @http("POST", "/v1/accounts")
    def sign_up(self, request: Request) -> Response:
        """Open a buyer, seller or reseller account with its first user. The email
        must be new (409 EMAIL_TAKEN)."""
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SignUpRequest, body)
        return self.idempotency.once(
            request, body, lambda: respond(201, schemas.AccountResponse, self.iam.sign_up(payload))
        )

    @http("POST", "/v1/auth/tokens")
    def sign_in(self, request: Request) -> Response:
        """Exchange an email and password for a bearer token (401 if they do not match)."""
        body = read_json(request, self.settings.max_body_bytes)
        payload = load(schemas.SignInRequest, body)
        return self.idempotency.once(
            request,
            body,
            lambda: respond(201, schemas.TokenResponse, self.iam.issue_token(payload)),
        )

    @http("DELETE", "/v1/auth/tokens/current")
    def sign_out(self, request: Request) -> Response:
        """Revoke the bearer token of this request. Other gateway replicas may accept it
        for up to TOKEN_CACHE_SECONDS more."""
        token = self.auth.authenticate(request, self.iam)
        self.auth.sign_out(token, self.iam)
        return no_content()

    @http("GET", "/v1/me")
    def me(self, request: Request) -> Response:
        """The caller's account, user and roles."""
        self.auth.authenticate(request, self.iam)
        return respond(200, schemas.MeResponse, self.iam.me())

    # -- operations ----------------------------------------------------------------

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Response:
        """The process is alive and serving HTTP."""
        return json_response(200, {"status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request: Request) -> Response:
        """The gateway can serve: its database answers, its consumers are attached and
        iam-agency answers a ping; 503 with the problems otherwise."""
        report = probes.readiness(self.observability, self.iam_probe)
        return json_response(200 if report["status"] == probes.READY else 503, report)

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        """Prometheus metrics of this process."""
        body, content_type = self.observability.render_metrics()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/openapi.json")
    def openapi_document(self, request: Request) -> Response:
        """This API as an OpenAPI 3 document."""
        return json_response(200, openapi.document(type(self)))

    @http("GET", "/docs")
    def docs(self, request: Request) -> Response:
        """This API as a readable page, rendered here from the OpenAPI document."""
        return openapi.docs_response(openapi.document(type(self)))

    @timer(interval=PURGE_INTERVAL_SECONDS)
    def purge_idempotency_records(self) -> None:
        """Delete idempotency records past their TTL (safe on every replica at once)."""
        self.idempotency.purge()
