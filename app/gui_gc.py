"""Python's cycle collector runs on the UI thread only, while the workstation is up.

Why: the collector runs on whichever thread happens to allocate when a threshold is crossed, the
engine's worker thread included. Freeing a cycle that holds Qt objects (pyqtgraph items and their
menus) destroys them on that thread: Qt's destructor takes a Qt lock and then wants the GIL, while
the UI thread holds the GIL and waits for that same lock. The GUI tests deadlocked exactly so.
pyqtgraph's GarbageCollector switches automatic collection off and collects, generation by
generation as the thresholds say, from a timer on the UI thread.
"""
from __future__ import annotations

from pyqtgraph.util.garbage_collector import GarbageCollector

COLLECT_INTERVAL_S = 1.0
_collector: GarbageCollector | None = None


def collect_on_ui_thread() -> None:
    """Idempotent; call on the UI thread once a QApplication exists (the timer lives there)."""
    global _collector
    if _collector is None:
        _collector = GarbageCollector(interval=COLLECT_INTERVAL_S)
