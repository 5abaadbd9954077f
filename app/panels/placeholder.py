"""A panel that says what it will hold, until the module providing it registers the real widget
with MainWindow.set_panel(name, widget)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderPanel(QWidget):
    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        heading = QLabel(title, self)
        heading.setObjectName("placeholderTitle")
        layout.addWidget(heading)
        body = QLabel(text, self)
        body.setWordWrap(True)
        body.setTextFormat(Qt.TextFormat.RichText)
        body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        layout.addWidget(body)
        layout.addStretch(1)


VENUES_TEXT = (
    "Before going live, this panel will check every venue the selected mode needs and show each "
    "result as OK / WARN / FAIL with a hint:<ul>"
    "<li><b>Exchanges</b> (Binance, Bybit, OKX): reachable and latency, server clock skew, authenticated "
    "account read, key permissions (trading on, withdrawals off), position/margin mode, funding interval, "
    "markets present.</li>"
    "<li><b>Chain</b> (RPC, wallet, AAVE, LSTs): RPC reachable, chain id, latest block age, ETH for gas, "
    "token balances and allowances, AAVE account data and e-mode.</li>"
    "<li><b>Credentials</b>: set, test and delete API keys and RPC URLs in the OS keyring (never in files).</li>"
    "</ul>The same checks run headless with <code>python main.py check-venues --json</code>.")

LIVE_TEXT = (
    "This panel will run the selected mode live or on paper (live market data, simulated fills):<ul>"
    "<li>state ACTIVE / REDUCING / HALTED, loop heartbeat and data age;</li>"
    "<li>positions, balances, health factor and margin per venue, P&amp;L by component;</li>"
    "<li>risk limits (drawdown, daily loss, position size, HF and margin floors) checked every tick;</li>"
    "<li>one <b>EMERGENCY STOP</b> button that halts at once and cancels every open order on every venue, "
    "and a separate, confirmed Flatten.</li></ul>"
    "While a live session runs, the Config panel is locked.")
