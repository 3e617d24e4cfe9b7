"""vpc (being written)."""

ROUTES: list = []
