"""evs (being written)."""

ROUTES: list = []
