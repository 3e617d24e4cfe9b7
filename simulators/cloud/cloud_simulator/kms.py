"""kms (being written)."""

ROUTES: list = []
