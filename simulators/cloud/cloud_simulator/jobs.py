"""Jobs (stub being written)."""

import threading


def settle_forever(store, settings, stopping: threading.Event) -> None:
    while not stopping.wait(settings.step_seconds / 2):
        pass
