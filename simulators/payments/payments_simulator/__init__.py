"""A stand-in card payment provider (``python -m payments_simulator``): a Stripe-like
HTTP API for card tokens, saved cards, charges and refunds, with test cards that decline,
answer late or refuse refunds. Mercato's services never import it; billing talks to it
over HTTP, as it would to a real provider."""
