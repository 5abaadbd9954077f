"""Why an instruction did not execute, as types the engine can act on (never parsed from text).

The venue layers (simulated venues, the live executor) raise these; the execution manager logs each
refusal as an event. A program may catch `MarginRefused` around one leg and go on with the others
(one under-margined venue must not leave the remaining venues unhedged); every other refusal stops
the program.
"""
from __future__ import annotations


class OrderRefused(Exception):
    """A venue (or the pre-trade check in front of it) refused the instruction; nothing executed."""


class MarginRefused(OrderRefused):
    """The account lacks the initial margin for an order that adds exposure. Reduce-only orders are
    never refused for margin. The remedy is funding the account, not retrying the order."""


class InvalidInstruction(ValueError):
    """An instruction with an amount no venue could execute (non-finite, negative where only a
    positive quantity makes sense). This is a bug upstream, so it stops the run loudly instead of
    being logged and skipped like a venue's refusal."""
