"""Live and paper trading: sessions, trading state, risk limits, emergency stop, dead-man switch,
journal and restart recovery (docs/ARCHITECTURE.md, "Live and paper")."""
from engine.services.live.flatten_preview import FlattenPreview, FlattenPreviewStale, FlattenRefused, PreviewStep
from engine.services.live.emergency_stop import CancelStatus, EmergencyStopReport, EStopHandle, VenueCancelProgress
from engine.services.live.recovery import Difference, RecoveryReport
from engine.services.live.risk_limits import Breach, RiskLimits
from engine.services.live.service import FlattenReport, LiveStartError, LiveStartRequest, LiveTradingService
from engine.services.live.blotter import OrderRecord
from engine.services.live.session import LiveSession, SessionPhase, TickRecord
from engine.services.live.snapshot import SessionSnapshot
from engine.services.live.state import TradingHalted, TradingState, TradingStateMachine

__all__ = [
    "Breach", "CancelStatus", "Difference", "EmergencyStopReport", "EStopHandle", "FlattenPreview", "FlattenPreviewStale",
    "FlattenRefused", "FlattenReport", "LiveSession", "PreviewStep",
    "LiveStartError", "LiveStartRequest", "LiveTradingService", "OrderRecord", "RecoveryReport", "RiskLimits",
    "SessionPhase", "SessionSnapshot", "TickRecord", "TradingHalted", "TradingState", "TradingStateMachine",
    "VenueCancelProgress",
]
