"""Simulated venues for the backtest: execute instructions against the portfolio with the cost model,
and play the venues' own actions each hour (funding settlement, reward sales, liquidations).

This is the backtest implementation of the engine's execution port; paper trading reuses it with live
prices. Every cost is computed explicitly here (fees, slippage, peg difference, flash fee, gas) so that
the P&L calculator can attribute it and the valuation check can confirm it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.components import stretch
from engine.components.risk import aave_state, cex_equity
from engine.domain.instructions import WALLET, Fill, Instruction, Op
from engine.domain.market import ETH_LIKE, LSTS, MarketView
from engine.domain.params import CexParams, RunParams
from engine.domain.portfolio import CexAccount, Portfolio
from engine.domain.refusals import MarginRefused, OrderRefused
from engine.domain.rewards import KING_UNWRAP_GAS_OP, RewardPayout
from engine.math import aave as aave_math
from engine.math.costs import gas_cost_eth, slippage_bps
from engine.math.perp import funding_payment, is_liquidatable

GAS_OP = {
    Op.APPROVE: "APPROVAL_ONCE",
    Op.SET_EMODE: "SET_EMODE_ONCE",
    Op.SUPPLY: "COLLATERAL_SUPPLIED",
    Op.WITHDRAW: "COLLATERAL_WITHDRAWN",
    Op.BORROW: "LOAN_CREATED",
    Op.REPAY: "LOAN_REPAID",
    Op.STAKE: "STAKE_DEPOSIT",
    Op.SWAP: "TOKEN_SWAP",
}


class ExecutionRejected(RuntimeError, OrderRefused):
    """The venue refuses the instruction (insufficient balance, unknown market, depth limit...)."""


class InsufficientMargin(ExecutionRejected, MarginRefused):
    """A perp order that adds exposure would leave the account below its initial margin."""


@dataclass(slots=True)
class FundingSettlement:
    venue: str
    asset: str
    size: float
    mark: float
    rate: float
    payment_usd: float          # received (+) / paid (-)


@dataclass(slots=True)
class FundingLeg:
    """One open perp's funding over a stretch of hours with fixed holdings (0 between settlements)."""

    venue: str
    asset: str
    size: float
    mark: np.ndarray
    rate: np.ndarray
    payment_usd: np.ndarray     # received (+) / paid (-) at each hour


#: A stretch's liquidation test is conservative by this relative margin: an hour that comes this close
#: is stepped, and the per-hour `liquidate` decides it (float rounding never skips a liquidation).
NEAR = 1e-9


@dataclass(slots=True)
class RewardSale:
    """A reward claimed and sold; values in the share-class currency."""

    token_out: str              # ETH (ETH share class) | USDT
    proceeds: float             # units of token_out credited to the wallet
    gross_value: float          # tokens x pool price
    sale_cost: float            # gross - proceeds (slippage table + pool fees)
    gas: float                  # unwrap + swap gas, in the share currency
    gas_eth: float
    gross_eth: float            # gross value in ETH

    @property
    def net_value(self) -> float:
        return self.proceeds - self.gas


@dataclass(slots=True)
class LiquidationResult:
    venue: str
    asset: str
    repaid_or_closed: float     # debt repaid (ETH) on AAVE / contracts closed on a CEX
    seized: float               # collateral units seized (AAVE) / 0
    loss_usd: float             # value lost to the liquidator / fee (>= 0: a liquidation never pays)
    trigger: str = ""           # the reading that triggered it (HF or margin ratio)
    deficit_usd: float = 0.0    # what the account still owes after it (kept as a negative balance / debt)
    price: float = 0.0          # CEX: the breach price the position closed at (one perp); AAVE: 0
    #: CEX: the close's P&L against the hour's marks, sum of size x (close price - mark). The hour's
    #: market move is attributed with the position open up to the mark; the position really ended at
    #: the breach price, so this difference is booked as perp mark-to-market.
    mark_adjustment_usd: float = 0.0


@dataclass(slots=True)
class _MarginBreach:
    """A CEX account whose margin fell below maintenance inside the hour, and where it closes."""

    ratio: float                 # margin ratio at the hour's adverse marks
    extreme: str                 # which marks: "high", "low", or "high/low" (shorts and longs)
    prices: dict[str, float]     # asset -> the breach price each perp closes at


def _wallet_token(reserve: str) -> str:
    """AAVE's WETH reserve is funded from (and repays with) the wallet's ETH; wrapping is in the op gas."""
    return "ETH" if reserve in ETH_LIKE else reserve


class SimulatedVenues:
    def __init__(self, portfolio: Portfolio, market: MarketView, params: RunParams) -> None:
        """USDT share classes hold no ETH: all their gas accrues as GAS_DEBT (a negative ETH balance,
        valued at the ETH price). ETH share classes pay gas from free ETH, any shortfall becoming GAS_DEBT."""
        self.p = portfolio
        self.gas_to_debt = params.strategy.currency == "USDT"
        self.mv = market
        self.params = params
        self._flash_outstanding: dict[str, float] = {}

    # ------------------------------------------------------------------ execution
    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill:
        if self.mv.outages:
            self._check_venue_up(ins, t)
        handler = getattr(self, "_exec_" + ins.op.value)
        fill: Fill = handler(ins, t)
        if charge_gas:
            op_name = ins.gas_op or GAS_OP.get(ins.op)
            if ins.op is Op.TRANSFER and ins.venue == WALLET:
                op_name = "VENUE_TRANSFER"
            if op_name:
                fill.gas_eth = gas_cost_eth(self.params.gas_units[op_name], self.mv.gas_gwei[t])
                self._charge_gas(fill.gas_eth)
        return fill

    def _check_venue_up(self, ins: Instruction, t: int) -> None:
        """A venue in an outage (stress scenario) takes no orders and sends or receives no transfers."""
        for venue in (ins.venue, ins.to_venue if ins.op is Op.TRANSFER else None):
            if venue and self.mv.venue_down(venue, t):
                raise ExecutionRejected(f"{venue} is down (outage): {ins.op.value} refused")

    def _charge_gas(self, eth: float) -> None:
        w = self.p.wallet
        paid = 0.0 if self.gas_to_debt else min(eth, max(w.tokens.get("ETH", 0.0), 0.0))
        if paid:
            w.add("ETH", -paid)
        if eth - paid:
            w.add("GAS_DEBT", -(eth - paid))

    def _gas_only(self, ins: Instruction, t: int) -> Fill:
        return Fill(ins, 0.0, 0.0, 0.0, 0.0, 0.0)

    _exec_approve = _gas_only

    def _exec_set_emode(self, ins: Instruction, t: int) -> Fill:
        self.p.wallet.emode = True
        return Fill(ins, 0.0, 0.0, 0.0, 0.0, 0.0)

    def _take(self, token: str, amount: float) -> None:
        w = self.p.wallet
        have = w.tokens.get(token, 0.0)
        # ETH may go negative only through gas (gas debt); every other spend needs the balance.
        if amount > have * (1 + 1e-12) + 1e-12:
            raise ExecutionRejected(f"wallet has {have:.6f} {token}, needs {amount:.6f}")
        w.tokens[token] = have - amount

    def _exec_supply(self, ins: Instruction, t: int) -> Fill:
        self._take(_wallet_token(ins.asset), ins.amount)
        w = self.p.wallet
        w.supply_scaled[ins.asset] = w.supply_scaled.get(ins.asset, 0.0) + aave_math.to_scaled(
            ins.amount, self.mv.supply_index[ins.asset][t])
        return Fill(ins, ins.amount, ins.amount, 0.0, 0.0, 0.0)

    def _exec_withdraw(self, ins: Instruction, t: int) -> Fill:
        w = self.p.wallet
        idx = self.mv.supply_index[ins.asset][t]
        have = w.supply_scaled.get(ins.asset, 0.0) * idx
        amount = min(ins.amount, have)
        w.supply_scaled[ins.asset] = max(w.supply_scaled.get(ins.asset, 0.0) - amount / idx, 0.0)
        w.add(_wallet_token(ins.asset), amount)
        return Fill(ins, amount, amount, 0.0, 0.0, 0.0)

    def _exec_borrow(self, ins: Instruction, t: int) -> Fill:
        w = self.p.wallet
        w.debt_scaled[ins.asset] = w.debt_scaled.get(ins.asset, 0.0) + aave_math.to_scaled(
            ins.amount, self.mv.borrow_index[ins.asset][t])
        w.add(_wallet_token(ins.asset), ins.amount)
        return Fill(ins, ins.amount, ins.amount, 0.0, 0.0, 0.0)

    def _exec_repay(self, ins: Instruction, t: int) -> Fill:
        w = self.p.wallet
        idx = self.mv.borrow_index[ins.asset][t]
        owed = w.debt_scaled.get(ins.asset, 0.0) * idx
        amount = min(ins.amount, owed)
        self._take(_wallet_token(ins.asset), amount)
        w.debt_scaled[ins.asset] = max(w.debt_scaled.get(ins.asset, 0.0) - amount / idx, 0.0)
        return Fill(ins, amount, amount, 0.0, 0.0, 0.0)

    def _exec_stake(self, ins: Instruction, t: int) -> Fill:
        """Mint the LST at the protocol rate (direct staking: no slippage, gas only)."""
        self._take("ETH", ins.amount)
        rate = self.mv.lst_oracle[ins.to_asset][t]
        units = ins.amount / rate
        self.p.wallet.add(ins.to_asset, units)
        return Fill(ins, ins.amount, units, rate, 0.0, 0.0)

    def _market_price_usd(self, token: str, t: int) -> float:
        """Price a DEX pays/charges: LSTs at their market peg, not the oracle."""
        if token in LSTS:
            return self.mv.lst_market[token][t] * self.mv.eth[t]
        return self.mv.price_usd(token, t)

    def _exec_swap(self, ins: Instruction, t: int) -> Fill:
        """DEX swap: market price, slippage table by size, pool fee. The cost is the value given minus
        the value received, both at valuation (oracle) prices, so it includes the peg difference."""
        sold, bought = ins.asset, ins.to_asset
        notional = ins.amount * self._market_price_usd(sold, t)
        if self.params.dex_max_order_usdt is None:
            raise ExecutionRejected(f"{ins.venue}: this mode loads no DEX venue, so nothing can be swapped")
        _within_depth(ins.venue, f"{sold}->{bought} swap", notional, self.params.dex_max_order_usdt)
        self._take(sold, ins.amount)
        pair = _swap_pair(sold, bought)
        bps = slippage_bps(notional, *(c[t] for c in self.mv.cost_bps[pair])) + self.params.swap_fee_bps
        out = notional * (1.0 - bps * 1e-4) / self._market_price_usd(bought, t)
        self.p.wallet.add(bought, out)
        cost = ins.amount * self.mv.price_usd(sold, t) - out * self.mv.price_usd(bought, t)
        return Fill(ins, ins.amount, out, out / ins.amount if ins.amount else 0.0, cost, 0.0)

    def _cex_cost_bps(self, asset: str, perp: bool, notional: float, t: int) -> float:
        pair = f"{asset}USDT-PERP" if perp else f"{asset}_USDT"
        if pair not in self.mv.cost_bps:    # no spot model for BTC: its perp book is the closest proxy
            pair = f"{asset}USDT-PERP"
        return slippage_bps(notional, *(c[t] for c in self.mv.cost_bps[pair]))

    def _exec_spot_trade(self, ins: Instruction, t: int) -> Fill:
        acct = self.p.account(ins.venue)
        price = self.mv.spot[ins.asset][t] if ins.asset not in ETH_LIKE else self.mv.eth[t]
        notional = abs(ins.amount) * price
        cp = self.params.cex[ins.venue]
        _within_depth(ins.venue, f"{ins.asset} spot", notional, cp.max_order_usdt)
        fee = notional * (cp.spot_taker_bps + self._cex_cost_bps(ins.asset, False, notional, t)) * 1e-4
        if ins.amount > 0 and (acct.spot.get(ins.asset, 0.0) + ins.amount) * price > cp.max_position_usdt:
            raise ExecutionRejected(
                f"{ins.venue}: a {ins.asset} spot holding of {(acct.spot.get(ins.asset, 0.0) + ins.amount) * price:,.0f} "
                f"USDT would exceed the exchange's position limit max_position_usdt {cp.max_position_usdt:,.0f}")
        if ins.amount > 0 and ins.amount * price + fee > acct.usdt + 1e-6:
            raise ExecutionRejected(f"{ins.venue}: {acct.usdt:.2f} USDT cannot buy {notional:.2f} + fee")
        held = acct.spot.get(ins.asset, 0.0)
        if ins.amount < 0 and -ins.amount > held * (1 + 1e-12) + 1e-12:
            raise ExecutionRejected(f"{ins.venue}: holds {held} {ins.asset}, cannot sell {-ins.amount}")
        acct.usdt -= ins.amount * price + fee
        acct.spot[ins.asset] = held + ins.amount
        return Fill(ins, ins.amount, ins.amount, price, fee, 0.0)

    def _exec_perp_trade(self, ins: Instruction, t: int) -> Fill:
        """A taker fill at the mark. An order that adds exposure needs the account's initial margin
        on the position it leaves (equity after the fee >= initial_margin_ratio x notional) and
        must stay within the exchange's position limit; reducing a position is always allowed."""
        cp = self.params.cex[ins.venue]
        acct = self.p.account(ins.venue)
        mark = self.mv.perp[(ins.venue, ins.asset)][t]
        notional = abs(ins.amount) * mark
        _within_depth(ins.venue, f"{ins.asset} perp", notional, cp.max_order_usdt)
        fee = notional * (cp.perp_taker_bps + self._cex_cost_bps(ins.asset, True, notional, t)) * 1e-4
        pos = acct.perps.get(ins.asset)
        old = pos.size if pos is not None else 0.0
        new = old + ins.amount
        if adds_exposure(old, new):
            self._check_initial_margin(acct, ins.venue, cp, abs(new) * mark - abs(old) * mark, fee, t)
            if abs(new) * mark > cp.max_position_usdt:
                raise ExecutionRejected(
                    f"{ins.venue}: a {ins.asset} perp position of {abs(new) * mark:,.0f} USDT would exceed the "
                    f"exchange's position limit max_position_usdt {cp.max_position_usdt:,.0f}")
        realized = acct.perp(ins.asset).trade(ins.amount, mark)
        acct.usdt += realized - fee
        return Fill(ins, ins.amount, ins.amount, mark, fee, 0.0)

    def _check_initial_margin(self, acct: CexAccount, venue: str, cp: CexParams, added_notional: float,
                              fee: float, t: int) -> None:
        """Trading at the mark moves no equity but the fee, so the test is on equity - fee."""
        equity, notional = cex_equity(acct, venue, self.mv, t)
        after = notional + added_notional
        required = cp.initial_margin_ratio * after
        if equity - fee < required:
            raise InsufficientMargin(
                f"{venue}: equity {equity - fee:,.2f} USDT after fees is below the initial margin "
                f"{required:,.2f} USDT ({cp.initial_margin_ratio:g} x {after:,.2f} notional) of the "
                f"position this order opens; the account must be funded first")

    def _exec_transfer(self, ins: Instruction, t: int) -> Fill:
        """USDT moves: wallet -> CEX costs gas (ERC-20 transfer); CEX -> anywhere costs the source's
        withdrawal fee."""
        fee = 0.0
        if ins.venue == WALLET:
            self._take("USDT", ins.amount)
        else:
            src = self.p.account(ins.venue)
            if ins.amount > src.usdt + 1e-6:
                raise ExecutionRejected(f"{ins.venue}: {src.usdt:.2f} USDT cannot send {ins.amount:.2f}")
            src.usdt -= ins.amount
            fee = min(self.params.cex[ins.venue].withdrawal_fee_usdt, ins.amount)
        received = ins.amount - fee
        if ins.to_venue == WALLET:
            self.p.wallet.add("USDT", received)
        else:
            self.p.account(ins.to_venue).usdt += received
        return Fill(ins, ins.amount, received, 1.0, fee, 0.0)

    def _exec_flash_borrow(self, ins: Instruction, t: int) -> Fill:
        self._flash_outstanding[ins.venue] = self._flash_outstanding.get(ins.venue, 0.0) + ins.amount
        self.p.wallet.add(_wallet_token(ins.asset), ins.amount)
        return Fill(ins, ins.amount, ins.amount, 0.0, 0.0, 0.0)

    def _exec_flash_repay(self, ins: Instruction, t: int) -> Fill:
        fee_rate = self.params.flash_fee_rate[ins.venue]
        fee_units = ins.amount * fee_rate
        self._take(_wallet_token(ins.asset), ins.amount + fee_units)
        self._flash_outstanding[ins.venue] = self._flash_outstanding.get(ins.venue, 0.0) - ins.amount
        # amount_out is what the lender received (principal + fee), so the event records the units
        # that left the wallet, not only their value.
        return Fill(ins, ins.amount, ins.amount + fee_units, fee_rate, fee_units * self.mv.price_usd(ins.asset, t), 0.0)

    def _exec_bundle(self, ins: Instruction, t: int) -> Fill:
        """Atomic: children run without their own gas; a failure rolls the whole bundle back."""
        snapshot = _clone(self.p)
        try:
            children = [self.execute(child, t, charge_gas=False) for child in ins.children]
            if any(abs(v) > 1e-9 for v in self._flash_outstanding.values()):
                raise ExecutionRejected("flash loan not repaid inside the bundle")
        except ExecutionRejected:
            _restore(self.p, snapshot)
            self._flash_outstanding.clear()
            raise
        cost = sum(c.execution_cost for c in children)
        return Fill(ins, 0.0, 0.0, 0.0, cost, 0.0, children=children)

    # ------------------------------------------------------------------ venue-driven flows
    def settle_funding(self, t: int) -> list[FundingSettlement]:
        """Pay/receive funding on every open perp at a settlement hour (rate is 0 between them)."""
        out: list[FundingSettlement] = []
        for venue, acct in self.p.cex.items():
            for asset, pos in acct.perps.items():
                if pos.size:
                    rate = self.mv.funding[(venue, asset)][t]
                    if rate:
                        mark = self.mv.perp[(venue, asset)][t]
                        pay = funding_payment(pos.size, mark, rate)
                        acct.usdt += pay
                        out.append(FundingSettlement(venue, asset, pos.size, mark, rate, pay))
        return out

    def funding_over(self, hours: slice) -> list[FundingLeg]:
        """`settle_funding` over a stretch of hours for the holdings as they are, without paying it
        (the caller applies what it keeps): each open perp's payment at every hour, in the order
        `settle_funding` pays them."""
        ms = self.mv.series()
        out: list[FundingLeg] = []
        for venue, acct in self.p.cex.items():
            for asset, pos in acct.perps.items():
                if pos.size:
                    rate = ms.funding[(venue, asset)][hours]
                    mark = ms.perp[(venue, asset)][hours]
                    out.append(FundingLeg(venue, asset, pos.size, mark, rate, -pos.size * mark * rate))
        return out

    def liquidation_possible(self, hours: slice, cash: Mapping[str, np.ndarray],
                             health_factor: np.ndarray | None = None) -> np.ndarray:
        """True at each hour of a stretch with fixed holdings (CEX cash as given) where `liquidate`
        could act: the AAVE health factor below 1, or a CEX account's margin ratio at the hour's
        adverse marks below maintenance, each within NEAR (those hours are stepped).
        ``health_factor``: the stretch's, when the caller has it (`stretch.risk`)."""
        ms = self.mv.series()
        n = hours.stop - hours.start
        possible = np.zeros(n, dtype=bool)
        aave_params = self.params.aave
        if aave_params is not None and any(self.p.wallet.debt_scaled.values()):
            if health_factor is None:
                health_factor = stretch.health_factor(self.p, ms, hours, aave_params)
            possible |= health_factor < 1.0 + NEAR
        for venue, acct in self.p.cex.items():
            cp = self.params.cex.get(venue)
            if cp is None or not acct.perps:
                continue
            equity: np.ndarray | float = cash[venue]
            notional: np.ndarray | float = 0.0
            for asset, pos in acct.perps.items():
                if not pos.size:
                    continue
                key = (venue, asset)
                mark = ms.perp[key][hours]
                ranges = ms.perp_high if pos.size < 0.0 else ms.perp_low
                extreme = mark if key not in ranges else (
                    np.maximum(ranges[key][hours], mark) if pos.size < 0.0 else np.minimum(ranges[key][hours], mark))
                equity = equity + pos.size * (extreme - pos.entry_price)
                notional = notional + abs(pos.size) * extreme
            if isinstance(notional, np.ndarray):
                possible |= equity < notional * (cp.maintenance_margin_ratio + NEAR)
        return possible

    def sell_reward(self, t: int, payout: RewardPayout, tokens: float) -> RewardSale | None:
        """Claim `tokens` of a reward and sell them into the share currency at hour t.

        The sale goes through the token's Uniswap v3 pool at the payout's pool price: the cost table's
        {TOKEN}_ETH bucket for the size plus the pool's fee tier, then (USDT share classes) WETH ->
        USDT through the ETH_USDT bucket plus the DEX venue's fee, all in one swap transaction. Gas:
        the swap, plus unwrapping KING when the reward came as KING. A reward worth less than its
        costs is left unclaimed (None): claiming it would only lose money. Nothing here is fixed:
        price, slippage and gas are the hour's own."""
        price = payout.price_eth
        if price is None or tokens <= 0.0:
            return None
        mv, t_eth = self.mv, self.mv.eth[t]
        gross_eth = tokens * price
        notional = gross_eth * t_eth
        bps = slippage_bps(notional, *(c[t] for c in mv.cost_bps[f"{payout.token}_ETH"])) + payout.pool_fee_bps
        proceeds_eth = gross_eth * (1.0 - bps * 1e-4)
        units = self.params.gas_units["TOKEN_SWAP"]
        if payout.via_king:
            units += self.params.gas_units[KING_UNWRAP_GAS_OP]
        gas_eth = gas_cost_eth(units, mv.gas_gwei[t])
        if self.gas_to_debt:        # USDT share class: on to USDT in the same transaction
            hop = (slippage_bps(proceeds_eth * t_eth, *(c[t] for c in mv.cost_bps["ETH_USDT"]))
                   + self.params.swap_fee_bps)
            proceeds, token_out = proceeds_eth * t_eth * (1.0 - hop * 1e-4), "USDT"
            gross, gas = notional, gas_eth * t_eth
        else:
            proceeds, token_out = proceeds_eth, "ETH"
            gross, gas = gross_eth, gas_eth
        if proceeds - gas <= 0.0:
            return None
        self.p.wallet.add(token_out, proceeds)
        self._charge_gas(gas_eth)
        return RewardSale(token_out, proceeds, gross, gross - proceeds, gas, gas_eth, gross_eth)

    def liquidate(self, t: int) -> list[LiquidationResult]:
        out: list[LiquidationResult] = []
        aave_params = self.params.aave
        if aave_params is not None and self.p.wallet.debt_scaled:
            out.extend(self._liquidate_aave(t))
        for venue, acct in self.p.cex.items():
            cp = self.params.cex.get(venue)
            if cp is None or not acct.perps:
                continue
            breach = self._margin_breach(venue, acct, cp.maintenance_margin_ratio, t)
            if breach is not None:
                liq = self._liquidate_cex(venue, breach, t)
                liq.trigger = (f"margin ratio {breach.ratio:.4f} < maintenance {cp.maintenance_margin_ratio} at "
                               f"the hour's {breach.extreme} mark; closed at "
                               + ", ".join(f"{a} {p:.6g}" for a, p in breach.prices.items())
                               + " where the ratio reached maintenance")
                if liq.deficit_usd:
                    liq.trigger += (f"; the account owes {liq.deficit_usd:,.2f} USDT after the close "
                                    "(negative balance kept as a debt)")
                out.append(liq)
        return out

    def _margin_breach(self, venue: str, acct: CexAccount, maintenance: float, t: int) -> _MarginBreach | None:
        """Did the venue's margin ratio fall below maintenance inside hour t, and at which prices?

        The hour's bar says how far the mark went, not when: each short is tested at the hour's high
        and each long at its low (the marks that hurt it; the close where the data has no range).
        Below maintenance there, the marks are taken to move in a straight line from the previous
        close to those extremes and every perp of the account closes at the first point of that
        path where the ratio reaches maintenance (the breach price: where an exchange's liquidation
        engine takes the position over), or at the previous close when the hour already starts
        below it. AAVE has no such range: its oracle series are daily snapshots interpolated to
        hours, so its health factor is checked at the hour's values only."""
        mv = self.mv
        cash = acct.usdt
        g_start = g_end = cash                 # equity - maintenance x notional along the path
        equity_end = cash
        notional_end = 0.0
        legs: list[tuple[str, float, float, float]] = []         # asset, size, start, extreme
        sides = set()
        for asset, pos in acct.perps.items():
            size = pos.size
            if not size:
                continue
            key = (venue, asset)
            marks = mv.perp[key]
            mark = marks[t]
            if size < 0.0:
                highs = mv.perp_high.get(key)
                extreme = max(highs[t], mark) if highs is not None else mark
                sides.add("high")
            else:
                lows = mv.perp_low.get(key)
                extreme = min(lows[t], mark) if lows is not None else mark
                sides.add("low")
            start = marks[t - 1] if t > 0 else mark
            g_start += size * (start - pos.entry_price) - maintenance * abs(size) * start
            g_end += size * (extreme - pos.entry_price) - maintenance * abs(size) * extreme
            equity_end += size * (extreme - pos.entry_price)
            notional_end += abs(size) * extreme
            legs.append((asset, size, start, extreme))
        if not is_liquidatable(equity_end, notional_end, maintenance):
            return None
        # g is linear along the path: the first point where it reaches zero
        along = 0.0 if g_start <= 0.0 else g_start / (g_start - g_end)
        prices = {asset: start + along * (extreme - start) for asset, _, start, extreme in legs}
        return _MarginBreach(equity_end / notional_end, "/".join(sorted(sides)), prices)

    def _liquidate_aave(self, t: int) -> list[LiquidationResult]:
        params = self.params.aave
        assert params is not None
        w = self.p.wallet
        state = aave_state(self.p, self.mv, t, params)
        hf = state.health_factor
        if hf >= 1.0:
            return []
        results = []
        repay_usd = aave_math.liquidation_repay(state.debt_usd, hf, params.close_factor,
                                                params.full_liquidation_hf)
        # Single-collateral / single-debt positions (the loop): seize the collateral asset.
        debt_reserve = next(r for r, s in w.debt_scaled.items() if s)
        coll_reserve = max(w.supply_scaled, key=lambda r: w.supply_scaled[r] * self.mv.supply_index[r][t]
                           * self.mv.price_usd(r, t))
        coll_price = self.mv.price_usd(coll_reserve, t)
        coll_usd = w.supply_scaled[coll_reserve] * self.mv.supply_index[coll_reserve][t] * coll_price
        bonus = params.collateral(coll_reserve, w.emode).liquidation_bonus
        seized_usd = aave_math.liquidation_seized(repay_usd, bonus, coll_usd)
        # With too little collateral left for the bonus, the liquidator repays only what the seized
        # collateral pays for: the rest of the debt stays owed (bad debt), never written off as a gain.
        repay_usd = min(repay_usd, seized_usd / (1.0 + bonus))
        debt_price = self.mv.price_usd(debt_reserve, t)
        w.debt_scaled[debt_reserve] -= repay_usd / debt_price / self.mv.borrow_index[debt_reserve][t]
        seized_units = seized_usd / coll_price
        w.supply_scaled[coll_reserve] -= seized_units / self.mv.supply_index[coll_reserve][t]
        results.append(LiquidationResult("aave_v3", coll_reserve, repay_usd / debt_price, seized_units,
                                         seized_usd - repay_usd, f"health factor {hf:.4f} < 1"))
        return results

    def _liquidate_cex(self, venue: str, breach: _MarginBreach, t: int) -> LiquidationResult:
        """Close every perp on the venue at its breach price and charge the liquidation fee on the
        closed notional out of what equity is left (never more: the fee cannot take the account
        below zero).

        At the breach price the account still holds its maintenance margin, so the fee normally
        fits. An hour that starts below maintenance closes at the previous close, and the equity
        may already be negative there: the negative balance is then kept as a debt the account
        owes (the worse case for the operator, where an insurance fund would have absorbed it) and
        is never written off upward: the liquidation itself only ever costs the fee."""
        acct = self.p.cex[venue]
        mv = self.mv
        closed = notional = adjustment = 0.0
        asset = ""
        for asset, pos in acct.perps.items():
            if pos.size:
                price = breach.prices[asset]
                size = pos.size
                closed += abs(size)
                notional += abs(size) * price
                adjustment += size * (price - mv.perp[(venue, asset)][t])
                acct.usdt += pos.trade(-size, price)
        fee = min(notional * self.params.cex[venue].liquidation_fee_rate, max(acct.usdt, 0.0))
        acct.usdt -= fee
        price = breach.prices[asset] if len(breach.prices) == 1 else 0.0
        return LiquidationResult(venue, asset, closed, 0.0, fee, deficit_usd=max(-acct.usdt, 0.0), price=price,
                                 mark_adjustment_usd=adjustment)


def adds_exposure(old: float, new: float) -> bool:
    """Does moving a position from `old` to `new` open or grow exposure (including flipping sides)?"""
    return abs(new) > abs(old) or (old > 0.0 > new) or (old < 0.0 < new)


def _within_depth(venue: str, what: str, notional: float, depth: float) -> None:
    if notional > depth:
        raise ExecutionRejected(f"{venue}: a {notional:,.0f} USDT {what} order exceeds the venue's depth limit "
                                f"max_order_usdt {depth:,.0f}; split it over several hours or trade less")


def _swap_pair(sold: str, bought: str) -> str:
    tokens = {sold, bought}
    if tokens == {"ETH", "USDT"}:
        return "ETH_USDT"
    lst = (tokens - {"ETH"}).pop() if "ETH" in tokens and len(tokens) == 2 else None
    if lst in LSTS:
        return f"ETH_{lst}"
    raise ExecutionRejected(f"no swap route modelled for {sold} -> {bought}")


def _clone(p: Portfolio) -> Portfolio:
    import copy
    return copy.deepcopy(p)


def _restore(p: Portfolio, snap: Portfolio) -> None:
    p.wallet = snap.wallet
    p.cex = snap.cex
