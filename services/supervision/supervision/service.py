"""The supervision service: entrypoints only (docs/architecture.md says what it will own)."""

from mercato.clock import ClockProvider
from mercato.contracts import supervision as contract
from mercato.db import Database
from mercato.errors import EXPECTED
from mercato.identity import BUYER, OPERATOR, SELLER
from mercato.service import MercatoService
from mercato.transport import rpc
from mercato.validation import dump, load
from supervision import attachments
from supervision.models import metadata
from supervision.repository import REPOSITORIES


class SupervisionService(MercatoService):
    name = "supervision"

    db = Database(metadata, repositories=REPOSITORIES)

    # -- attachments ------------------------------------------------------------------
    # (the gateway streams the bytes to the object store and back; these say what was
    # stored and who may read it)

    clock = ClockProvider()

    @rpc(expected_exceptions=EXPECTED)
    def register_attachment(self, payload: dict) -> dict:
        """Record an upload the gateway stored (docs/api.md ``POST /v1/attachments``)."""
        uploader = self.caller.require_role(BUYER, SELLER, OPERATOR)
        request = load(contract.AttachmentRegistration, payload)
        return dump(
            contract.AttachmentResponse,
            attachments.register(self.db, self.clock, uploader=uploader, request=request),
        )

    @rpc(expected_exceptions=EXPECTED)
    def download_attachment(self, attachment_id: str) -> dict:
        """Where an attachment's bytes are, if the caller may download it (else 404)."""
        caller = self.caller.require()
        return dump(
            contract.AttachmentDownload,
            attachments.for_download(self.db, caller=caller, attachment_id=str(attachment_id)),
        )
