"""supervision's contracts: the events each step of a flow announces, and what its RPCs
accept and answer (the public API's supervision, appeal and message bodies are these
very schemas)."""

import datetime as dt

from marshmallow import ValidationError, fields, validate, validates_schema

from mercato.contracts.registry import register
from mercato.money import MoneySchema, PositiveMoneySchema
from mercato.terms import DELIVERY_METHODS
from mercato.validation import (
    AnswerSchema,
    PageSchema,
    QueryBoolean,
    StrictBoolean,
    StrictSchema,
    page_of,
)

FLOW_STEPS = (
    "awaiting_request",
    "awaiting_confirmation",
    "in_service",
    "awaiting_acceptance",
    "completed",
    "closed",
)
DECISIONS = ("continue", "complete", "refund")
MAX_ATTACHMENTS = 10

_FLOW = "flw_5a6b7c8d9e0f41a2b3c4d5e6f7a8b9c0"
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_SUBSCRIPTION = "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_SELLER = "acc_9a8b7c6d5e4f43a2b1c0d9e8f7a6b5c4"
_APPEAL = "apl_0f1e2d3c4b5a49687f6e5d4c3b2a1908"
_AT = dt.datetime(2026, 1, 16, 10, 0, tzinfo=dt.UTC)
_FLOW_EXAMPLE = {
    "flow_id": _FLOW,
    "order_id": _ORDER,
    "subscription_id": _SUBSCRIPTION,
    "account_id": _BUYER,
    "seller_account_id": _SELLER,
    "product_id": "prd_1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6",
    "delivery_method": "professional_service",
    "at": _AT,
}


# -- events ----------------------------------------------------------------------------


class FlowEventV1(StrictSchema):
    """Which flow, of which order and subscription, between which buyer and seller, and
    the step it is at after the event."""

    flow_id = fields.String(required=True)
    order_id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    account_id = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    product_id = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    step = fields.String(required=True, validate=validate.OneOf(FLOW_STEPS))
    at = fields.AwareDateTime(required=True)


class FlowStartedV1(FlowEventV1):
    kind = fields.String(required=True, validate=validate.OneOf(("license", "service")))
    process = fields.String(required=True, validate=validate.OneOf(("2025-03-26", "legacy")))


class FlowCompletedV1(FlowEventV1):
    accepted_by = fields.String(
        required=True, validate=validate.OneOf(("buyer", "system", "operator"))
    )
    paid_at = fields.AwareDateTime(required=True)


class FlowClosedV1(FlowEventV1):
    reason = fields.String(required=True)
    # set when an operator refunded on appeal: orders cancels the order with this refund
    refund = fields.Nested(MoneySchema, required=True, allow_none=True)


class AppealEventV1(StrictSchema):
    appeal_id = fields.String(required=True)
    flow_id = fields.String(required=True)
    order_id = fields.String(required=True)
    opened_by = fields.String(required=True, validate=validate.OneOf(("buyer", "seller")))
    status = fields.String(required=True, validate=validate.OneOf(("open", "resolved")))
    due_at = fields.AwareDateTime(required=True)
    decision = fields.String(required=True, allow_none=True, validate=validate.OneOf(DECISIONS))
    at = fields.AwareDateTime(required=True)


def _flow_event(name: str, schema, summary: str, step: str, **extra) -> None:
    register(
        f"supervision.flow.{name}",
        1,
        schema,
        summary=summary,
        subject="the flow id",
        example_subject=_FLOW,
        example={**_FLOW_EXAMPLE, "step": step, **extra},
    )


_flow_event(
    "started",
    FlowStartedV1,
    "A supervised order was paid and its flow started (a license at awaiting_acceptance, "
    "a professional service or supervised SaaS at awaiting_request, or at "
    "awaiting_confirmation when paid before 2025-03-26).",
    "awaiting_request",
    kind="service",
    process="2025-03-26",
)
_flow_event(
    "request_submitted",
    FlowEventV1,
    "The buyer submitted its request; the seller is to confirm it.",
    "awaiting_confirmation",
)
_flow_event(
    "request_rejected",
    FlowEventV1,
    "The seller sent the buyer's request back to be written again.",
    "awaiting_request",
)
_flow_event(
    "confirmed",
    FlowEventV1,
    "The seller confirmed the request and is in service; a supervised SaaS tenant is "
    "created now (provisioning reacts).",
    "in_service",
)
_flow_event(
    "service_provided",
    FlowEventV1,
    "The seller provided the service (or the SaaS tenant was delivered); the buyer is "
    "to accept it.",
    "awaiting_acceptance",
)
_flow_event(
    "completed",
    FlowCompletedV1,
    "The buyer accepted (or the acceptance period passed, or an operator decided so): "
    "the order completes and the subscription is enabled.",
    "completed",
    accepted_by="buyer",
    paid_at=dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC),
)
_flow_event(
    "closed",
    FlowClosedV1,
    "The flow ended without acceptance: an operator refunded on appeal (``refund``: "
    "orders cancels the order and billing refunds that amount), or the order was "
    "cancelled because its delivery failed (``refund`` null).",
    "closed",
    reason="Refunded on appeal: the service was not provided.",
    refund={"amount": 50000, "currency": "USD"},
)
for _name, _summary, _status, _decision in (
    (
        "opened",
        "A buyer or seller opened an appeal; the flow is frozen until an operator "
        "resolves it (due in three working days).",
        "open",
        None,
    ),
    (
        "resolved",
        "An operator resolved an appeal: continue, complete or refund.",
        "resolved",
        "continue",
    ),
):
    register(
        f"supervision.appeal.{_name}",
        1,
        AppealEventV1,
        summary=_summary,
        subject="the appeal id",
        example_subject=_APPEAL,
        example={
            "appeal_id": _APPEAL,
            "flow_id": _FLOW,
            "order_id": _ORDER,
            "opened_by": "buyer",
            "status": _status,
            "due_at": dt.datetime(2026, 1, 21, 10, 0, tzinfo=dt.UTC),
            "decision": _decision,
            "at": _AT,
        },
    )


# -- RPC: what the routes accept ----------------------------------------------------------

_ATTACHMENT_IDS = fields.List(
    fields.String(validate=validate.Length(min=1, max=40)),
    load_default=list,
    validate=validate.Length(max=MAX_ATTACHMENTS),
    metadata={"description": f"Ids from `POST /v1/attachments`, at most {MAX_ATTACHMENTS}."},
)


class FlowsQuery(PageSchema):
    step = fields.String(validate=validate.OneOf(FLOW_STEPS))
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "An order id, or words of the product's name."},
    )


class RequestSubmission(StrictSchema):
    description = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    attachment_ids = _ATTACHMENT_IDS


class Confirmation(StrictSchema):
    """``{}`` confirms; ``{"reject": true, "reason": "..."}`` sends the request back."""

    reject = StrictBoolean(load_default=False)
    reason = fields.String(validate=validate.Length(min=1, max=1000))

    @validates_schema
    def _reason_with_reject(self, data, **kwargs):
        if data.get("reject") and not data.get("reason"):
            raise ValidationError("a rejection needs a reason", "reason")
        if not data.get("reject") and data.get("reason"):
            raise ValidationError("a reason goes only with reject: true", "reason")


class ProvisionSubmission(StrictSchema):
    description = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    attachment_ids = _ATTACHMENT_IDS


class AppealRequest(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    attachment_ids = _ATTACHMENT_IDS


class AppealResolution(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    message = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    refund = fields.Nested(PositiveMoneySchema, load_default=None, allow_none=True)

    @validates_schema
    def _refund_with_refund(self, data, **kwargs):
        if data["decision"] == "refund" and not data.get("refund"):
            raise ValidationError("a refund decision needs the amount to refund", "refund")
        if data["decision"] != "refund" and data.get("refund"):
            raise ValidationError("only a refund decision refunds", "refund")


class FlowsOfOrdersRequest(StrictSchema):
    order_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        required=True,
        validate=validate.Length(max=100),
    )


class FlowOfOrder(AnswerSchema):
    order_id = fields.String()
    flow_id = fields.String()


class FlowsOfOrders(AnswerSchema):
    """The flows of those orders the caller is a party of; an order with none is absent."""

    items = fields.List(fields.Nested(FlowOfOrder))


class MessagesQuery(PageSchema):
    unread = QueryBoolean(metadata={"description": "`true`: only the unread ones."})


# -- RPC: what they answer ------------------------------------------------------------------


class StepView(AnswerSchema):
    name = fields.String()
    status = fields.String(metadata={"description": "`done`, `current`, `pending` or `skipped`"})
    at = fields.AwareDateTime(allow_none=True)


class SubmissionView(AnswerSchema):
    id = fields.String()
    author_account_id = fields.String()
    description = fields.String()
    attachment_ids = fields.List(fields.String())
    rejected_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class RecordView(AnswerSchema):
    at = fields.AwareDateTime()
    actor = fields.String(metadata={"description": "`buyer`, `seller`, `operator` or `system`"})
    action = fields.String()
    note = fields.String(allow_none=True)


class AppealView(AnswerSchema):
    id = fields.String()
    flow_id = fields.String()
    order_id = fields.String()
    status = fields.String(metadata={"description": "`open` or `resolved`"})
    opened_by = fields.String()
    reason = fields.String()
    description = fields.String()
    attachment_ids = fields.List(fields.String())
    opened_at = fields.AwareDateTime()
    due_at = fields.AwareDateTime(
        metadata={
            "description": "Three working days after opening (weekends and holidays skipped)."
        }
    )
    overdue = fields.Boolean()
    decision = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    refund = fields.Nested(MoneySchema, allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)


class ProductRef(AnswerSchema):
    id = fields.String()
    name = fields.String()


class FlowApplication(AnswerSchema):
    """A supervised SaaS product's application until the flow completes (then it is on
    the purchased app): the password is masked; reveal it with
    `POST /v1/purchased-apps/{subscription_id}/credentials/reveal`."""

    username = fields.String(allow_none=True)
    password = fields.String(allow_none=True)
    management_url = fields.String(allow_none=True)
    frontend_url = fields.String(allow_none=True)
    license_key = fields.String(allow_none=True)


class FlowSummary(AnswerSchema):
    id = fields.String()
    order_id = fields.String()
    subscription_id = fields.String()
    product = fields.Nested(ProductRef)
    specification_name = fields.String()
    delivery_method = fields.String()
    process = fields.String(metadata={"description": "`2025-03-26` or `legacy`"})
    step = fields.String(metadata={"description": " · ".join(FLOW_STEPS)})
    buyer_account_id = fields.String()
    seller_account_id = fields.String()
    appeal_open = fields.Boolean()
    accept_by = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class FlowResponse(FlowSummary):
    paid = fields.Nested(MoneySchema)
    steps = fields.List(fields.Nested(StepView))
    requests = fields.List(fields.Nested(SubmissionView))
    provisions = fields.List(fields.Nested(SubmissionView))
    request_template = fields.String(allow_none=True)
    application = fields.Nested(FlowApplication, allow_none=True)
    appeal = fields.Nested(
        AppealView, allow_none=True, metadata={"description": "The open one, else the latest."}
    )
    records = fields.List(fields.Nested(RecordView))
    request_by = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "While awaiting_request: when the buyer is reminded."},
    )
    confirm_by = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "While awaiting_confirmation: when the seller is reminded."},
    )


FlowPage = page_of(FlowSummary, "FlowPage")
AppealPage = page_of(AppealView, "AppealPage")


class MessageView(AnswerSchema):
    id = fields.String()
    kind = fields.String()
    subject = fields.String()
    body = fields.String()
    flow_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    read = fields.Boolean()


class MessagePage(page_of(MessageView, "MessagePageBase")):  # type: ignore[misc]
    unread = fields.Integer(metadata={"description": "How many of all the messages are unread."})


# -- attachments --------------------------------------------------------------------------

# docs/api.md, POST /v1/attachments: at most 50 MB (MiB: 52,428,800 bytes), of these types,
# recognised by their content (the gateway's filetypes)
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
ATTACHMENT_CONTENT_TYPES = (
    "image/bmp",
    "image/jpeg",
    "image/png",
    "image/gif",
    "application/pdf",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
_ATTACHMENT = "att_6f5e4d3c2b1a49f8e7d6c5b4a3928170"


class AttachmentRegistration(StrictSchema):
    """What the gateway stored (``register_attachment``): the bytes are in the object
    store under ``storage_key``; the uploader is the caller."""

    filename = fields.String(required=True, validate=validate.Length(min=1, max=255))
    content_type = fields.String(required=True, validate=validate.OneOf(ATTACHMENT_CONTENT_TYPES))
    size = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_ATTACHMENT_BYTES)
    )
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    storage_key = fields.String(
        required=True, validate=validate.Regexp(r"^[a-z0-9]+(/[a-z0-9]+)*$")
    )


class AttachmentResponse(AnswerSchema):
    id = fields.String(metadata={"example": _ATTACHMENT})
    filename = fields.String(
        metadata={
            "description": "The name it was uploaded with, without any folder, ending in an "
            "extension of its recognised type (one is added when it does not).",
            "example": "invoice.pdf",
        }
    )
    content_type = fields.String(
        metadata={
            "description": "The type recognised from the content (never the one declared): "
            + ", ".join(f"`{kind}`" for kind in ATTACHMENT_CONTENT_TYPES)
            + ".",
            "example": "application/pdf",
        }
    )
    size = fields.Integer(metadata={"description": "Bytes.", "example": 48213})
    sha256 = fields.String(
        metadata={
            "description": "The SHA-256 of the content, in hex.",
            "example": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        }
    )


class AttachmentDownload(AttachmentResponse):
    """What ``download_attachment`` answers the gateway (never the public API): where the
    bytes are."""

    storage_key = fields.String()
