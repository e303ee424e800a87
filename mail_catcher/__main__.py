"""``python -m mail_catcher``: see mail_catcher.app for the flags."""

from __future__ import annotations

import signal
from types import FrameType


def _run() -> int:
    # SIGTERM/SIGINT while the libraries are still importing: remember it and
    # exit 0 once that is done, rather than dying mid-import with a traceback.
    stop_signals: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        stop_signals.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, remember)
    from mail_catcher.app import main

    return main(stop_signals=stop_signals)


if __name__ == "__main__":
    raise SystemExit(_run())
