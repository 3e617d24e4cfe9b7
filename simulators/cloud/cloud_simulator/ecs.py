"""ecs (being written)."""

ROUTES: list = []
