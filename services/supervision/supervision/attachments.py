"""Attachments' use cases: registering what the gateway stored, saying who may download
it, and attaching it to a flow.

The bytes never come here: the gateway streams an upload into the object store, then
registers its metadata (``register``); to download, it asks where the bytes are
(``for_download``), which is answered only to those who may see them, and streams them
from the store itself.

Who may download an attachment: its uploader; once a request, provision or appeal has
attached it to a flow (``claim_for_flow``), that flow's buyer and seller; and an
operator when the flow has an appeal. Anyone else is told it does not exist.

Each use case takes a unit of work (``uow.attachments``, ``uow.flows``);
``register`` commits, ``claim_for_flow`` leaves the commit to the flow's use case that
calls it, so the claim and the submission that names the attachments commit together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import Conflict, NotFound, ValidationError
from mercato.identity import OPERATOR, Identity
from supervision.models import Attachment

ATTACHMENT_IDS = "attachment_ids"  # the field of a request, provision or appeal


def view(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the API shows it."""
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }


def register(uow, clock: Clock, *, uploader: Identity, request: dict[str, Any]) -> dict[str, Any]:
    """Record an uploaded file the gateway stored under ``storage_key``, as the caller's.

    The same registration again (an RPC delivered twice) answers the attachment it
    made; a storage key registered by someone else is a Conflict (keys are random, so
    only a forged call gets there).
    """
    existing = uow.attachments.get_by_storage_key(request["storage_key"])
    if existing is not None:
        if existing.uploader_account_id != uploader.account_id:
            raise Conflict("this storage key is registered already")
        return view(existing)
    attachment = Attachment(
        id=new_id("att"),
        uploader_account_id=uploader.account_id,
        filename=request["filename"],
        content_type=request["content_type"],
        size=request["size"],
        sha256=request["sha256"],
        storage_key=request["storage_key"],
        flow_id=None,
        created_at=clock.now(),
    )
    uow.attachments.add(attachment)
    uow.commit()
    return view(attachment)


def for_download(uow, *, caller: Identity, attachment_id: str) -> dict[str, Any]:
    """The attachment with its ``storage_key``, if ``caller`` may download it; else
    NotFound, the same answer as for an attachment that does not exist."""
    attachment = uow.attachments.get(attachment_id)
    if attachment is None or not may_download(uow, attachment, caller):
        raise NotFound("attachment not found")
    return {**view(attachment), "storage_key": attachment.storage_key}


def may_download(uow, attachment: Attachment, caller: Identity) -> bool:
    if attachment.uploader_account_id == caller.account_id:
        return True
    if attachment.flow_id is None:
        return False
    if caller.has_role(OPERATOR):
        # an operator handles appeals: the files of a flow nobody appealed are the
        # parties' business only
        return bool(uow.attachments.has_appeal_on_flow(attachment.flow_id))
    flow = uow.flows.get(attachment.flow_id)
    return flow is not None and caller.account_id in (
        flow.buyer_account_id,
        flow.seller_account_id,
    )


def claim_for_flow(uow, ids: Iterable[str], account_id: str, flow_id: str) -> list[str]:
    """Attach the attachments ``ids`` to the flow ``flow_id`` for the request, provision
    or appeal that names them; answers their ids, in order, each once.

    Each must be ``account_id``'s own upload and attached to no other flow (one already
    attached to this flow may be named again: a request written anew after the seller
    sent it back). Otherwise nothing changes: a ValidationError names
    ``attachment_ids`` with every problem. The rows are locked, so two submissions
    naming the same file for two flows cannot both take it. No commit here: the
    caller's use case commits the claim with its submission.
    """
    wanted = list(dict.fromkeys(ids))
    found = {attachment.id: attachment for attachment in uow.attachments.lock_many(wanted)}
    problems = []
    for attachment_id in wanted:
        attachment = found.get(attachment_id)
        if attachment is None or attachment.uploader_account_id != account_id:
            problems.append(f"{attachment_id}: no such attachment of yours")
        elif attachment.flow_id not in (None, flow_id):
            problems.append(f"{attachment_id}: already attached to another order's flow")
    if problems:
        raise ValidationError(
            f"invalid request: check {ATTACHMENT_IDS}", {ATTACHMENT_IDS: problems}
        )
    for attachment_id in wanted:
        found[attachment_id].flow_id = flow_id
    return wanted
