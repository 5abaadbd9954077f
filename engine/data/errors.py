"""Errors raised by the historical data layer.

Both subclass ValueError so callers that only care about "bad input" can catch one type, while the
UI and the CLI can tell a window problem (the user picked dates the data does not cover) from a
broken data file (the shipped data is corrupt or was replaced).
"""

from __future__ import annotations


class DataRangeError(ValueError):
    """The requested window is not covered by a required series.

    The message always names the series (and its file), the series' available range and the
    requested range, so the user can fix the dates without reading code.
    """


class DataFormatError(ValueError):
    """A data file exists but cannot be used: missing columns, unparsable timestamps, bad values.

    The message names the file and the offending column or key.
    """
