"""What provisioning's own answers add to its contract (``mercato.contracts.provisioning``,
where its RPCs' answer schemas live)."""

from marshmallow import fields

from mercato.contracts.provisioning import ApplicationResponse


class ApplicationOut(ApplicationResponse):
    """A purchased app's application as provisioning answers it: the contract's, and
    which delivery it came from and how it went."""

    subscription_id = fields.String()
    delivery_method = fields.String()
    instance_id = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
