"""Python's cycle collector runs on the UI thread only, while the workstation is up.

Why: the collector runs on whichever thread happens to allocate when a threshold is crossed, the
engine's worker thread included. Freeing a cycle that holds Qt objects (pyqtgraph items and their
menus) destroys them on that thread: Qt's destructor takes a Qt lock and then wants the GIL, while
the UI thread holds the GIL and waits for that same lock. The GUI tests deadlocked exactly so.
pyqtgraph's GarbageCollector switches automatic collection off and collects, generation by
generation as the thresholds say, from a timer on the UI thread.

A full (generation 2) collection walks every tracked object, and the workstation holds ~370,000
of them once its modules (pandas, ccxt, web3, pyqtgraph) and first window are loaded: each full
collection stalled the UI for ~330 ms. What exists when the first window is up lives as long as
the app, so it is frozen out of the collector (gc.freeze); a full collection then walks only what
came after.
"""
from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

COLLECT_INTERVAL_S = 1.0
_collector: GarbageCollector | None = None
_frozen = False


def collect_on_ui_thread() -> None:
    """Idempotent; call on the UI thread once a QApplication exists (the timer lives there)."""
    global _collector
    if _collector is None:
        _collector = GarbageCollector(interval=COLLECT_INTERVAL_S)


def freeze_startup_objects() -> None:
    """Once per process, after the first window is built: move everything alive now (modules,
    classes, the window) to the collector's permanent generation, so a full collection no longer
    walks them. Later objects are collected as before."""
    global _frozen
    if not _frozen:
        # No collection first: it would add ~0.3 s to start-up, and what is garbage at this point
        # (a few import-time cycles) is small.
        gc.freeze()
        _frozen = True
