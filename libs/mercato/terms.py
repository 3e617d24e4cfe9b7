"""The marketplace's words that more than one service, the gateway and the event
contracts all use: billing modes, period units, delivery methods, payment methods and
the statuses the public API shows. Each is written here once; a service's state
machine (its ``domain.py``) decides which moves between its statuses exist.
"""

from __future__ import annotations

# how a product is charged
YEARLY_MONTHLY = "yearly_monthly"
PAY_PER_USE = "pay_per_use"
ONE_TIME = "one_time"
BILLING_MODES = (YEARLY_MONTHLY, PAY_PER_USE, ONE_TIME)

# the unit a price is per: month or year (yearly_monthly), hour (pay_per_use)
MONTH, YEAR, HOUR = "month", "year", "hour"
PERIOD_UNITS = (MONTH, YEAR, HOUR)
PERIOD_UNITS_OF_A_TERM = (MONTH, YEAR)  # what a yearly/monthly purchase runs for

# how a product reaches the buyer
LICENSE = "license"
PROFESSIONAL_SERVICE = "professional_service"
SAAS = "saas"
IMAGE = "image"
DELIVERY_METHODS = (LICENSE, PROFESSIONAL_SERVICE, SAAS, IMAGE)

# how a buyer pays; a reseller's customer's orders are paid by its reseller
BALANCE = "balance"
CREDIT_CARD = "credit_card"
CREDIT = "credit"
RESELLER = "reseller"
PAYMENT_METHODS = (BALANCE, CREDIT_CARD, CREDIT)  # what a buyer chooses
PAYER_METHODS = (*PAYMENT_METHODS, RESELLER)  # what a payment records

# a product's life in the catalog
DRAFT, PUBLISHED, DELISTED = "draft", "published", "delisted"
PRODUCT_STATUSES = (DRAFT, PUBLISHED, DELISTED)

# an order's statuses
UNPAID = "unpaid"
PAID = "paid"
DELIVERING = "delivering"
AWAITING_ACCEPTANCE = "awaiting_acceptance"
COMPLETED = "completed"
CANCELLED = "cancelled"
FAILED = "failed"
ORDER_STATUSES = (UNPAID, PAID, DELIVERING, AWAITING_ACCEPTANCE, COMPLETED, CANCELLED, FAILED)

# what an order is for: a new purchase, or a renewal or an upgrade of a subscription
PURCHASE, RENEWAL, UPGRADE = "purchase", "renewal", "upgrade"
ORDER_TYPES = (PURCHASE, RENEWAL, UPGRADE)

# a subscription's (a purchased app's) statuses
ENABLING = "enabling"
ENABLED = "enabled"
FROZEN = "frozen"
EXPIRED = "expired"
RELEASED = "released"
SUBSCRIPTION_STATUSES = (ENABLING, ENABLED, FROZEN, EXPIRED, RELEASED)

# an unsubscription request's statuses
PENDING_REVIEW, APPROVED, REJECTED, REFUNDED = "pending_review", "approved", "rejected", "refunded"
UNSUBSCRIPTION_STATUSES = (PENDING_REVIEW, APPROVED, REJECTED, REFUNDED)
