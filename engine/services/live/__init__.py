"""Live and paper trading: sessions, trading state, risk limits, emergency stop, journal, recovery."""
from engine.services.live.emergency_stop import CancelStatus, EmergencyStopReport, VenueCancelProgress
from engine.services.live.risk_limits import Breach, RiskLimits
from engine.services.live.service import FlattenReport, LiveStartError, LiveStartRequest, LiveTradingService
from engine.services.live.state import TradingHalted, TradingState, TradingStateMachine

__all__ = [
    "Breach", "CancelStatus", "EmergencyStopReport", "FlattenReport", "LiveStartError", "LiveStartRequest",
    "LiveTradingService", "RiskLimits", "TradingHalted", "TradingState", "TradingStateMachine",
    "VenueCancelProgress",
]
