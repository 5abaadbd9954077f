"""Historical market data: requirements, the aligned hourly frame, and the provider that builds it."""

from engine.data.aligned import FUNDING_HOURS_UTC, AlignedMarketData
from engine.data.cache import CACHE_VERSION
from engine.data.errors import DataFormatError, DataRangeError
from engine.data.provider import HistoricalDataProvider
from engine.data.requirements import DataRequirements

__all__ = [
    "CACHE_VERSION",
    "FUNDING_HOURS_UTC",
    "AlignedMarketData",
    "DataFormatError",
    "DataRangeError",
    "DataRequirements",
    "HistoricalDataProvider",
]
