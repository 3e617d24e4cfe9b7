"""eip (being written)."""

ROUTES: list = []
