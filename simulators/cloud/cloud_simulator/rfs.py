"""RFS (stub being written)."""

ROUTES: list = []


def resume_after_restart(store, settings) -> None:
    return None
