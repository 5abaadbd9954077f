"""One trading cycle: the step backtest, paper and live all run (docs/ARCHITECTURE.md, The trading cycle).

A step at index t of a MarketView (an hour of the backtest grid, or the row a live tick appended):

1. attribute the market move of the holdings since the previous step, in closed form per component;
2. let the venues act: funding at settlements, simulated liquidations, (after trading) rewards due;
3. ask the caller whether the strategy may trade (a live session checks its risk limits here, so a
   breach acts before the strategy trades on the data);
4. run the strategy: the entry program until it has entered, then `check` every step and the
   `rebalance` program it asks for;
5. value the portfolio independently (mark-to-market: LSTs at their market rate) and record how far
   the value change is from the sum of the components booked (the reconciliation error).

The figures of the last step stay on the cycle (`value`, `risk`, `reconciliation`, `changed`, ...):
the backtest's hot loop reads them into its arrays without a per-hour result object. The strategy
program runs through the ExecutionManager, synchronously (`step`: simulated fills) or awaiting each
order (`step_async`: live); both share every phase above.
"""
from __future__ import annotations

from enum import Enum
from collections.abc import Callable, Sequence
from typing import Protocol

from engine.components.event_log import EventLog
from engine.components.pnl_attribution import attribute_market_move
from engine.components.rewards import RewardBook, RewardPayment, eligible_eeth
from engine.components.risk import RiskSnapshot, snapshot
from engine.components.valuation import lst_peg_usd, value_usd
from engine.domain.events import Event
from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.rewards import RewardPayout
from engine.execution.ledger import Ledger
from engine.execution.manager import AsyncExecute, ExecutionManager
from engine.execution.outcome import ProgramOutcome
from engine.strategies.base import Program, Strategy, StrategyContext

class FundingPayment(Protocol):
    """One perp's funding at a settlement, as the venue layer reports it."""

    @property
    def venue(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def size(self) -> float: ...
    @property
    def mark(self) -> float: ...
    @property
    def rate(self) -> float: ...
    @property
    def payment_usd(self) -> float: ...          # received (+) / paid (-)


class Liquidation(Protocol):
    @property
    def venue(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def repaid_or_closed(self) -> float: ...
    @property
    def seized(self) -> float: ...
    @property
    def loss_usd(self) -> float: ...             # what the liquidation cost, never a gain
    @property
    def trigger(self) -> str: ...
    @property
    def price(self) -> float: ...                # CEX: the breach price the position closed at
    @property
    def mark_adjustment_usd(self) -> float: ...  # the close against the hour's marks (perp mark-to-market)


class RewardSale(Protocol):
    """A reward claimed and sold into the share currency (values in the share currency)."""

    @property
    def token_out(self) -> str: ...
    @property
    def proceeds(self) -> float: ...
    @property
    def gross_value(self) -> float: ...
    @property
    def sale_cost(self) -> float: ...
    @property
    def gas(self) -> float: ...
    @property
    def gas_eth(self) -> float: ...
    @property
    def gross_eth(self) -> float: ...
    @property
    def net_value(self) -> float: ...


class VenueWorld(Protocol):
    """The simulated venue layer: executes instructions and plays the venues' own hourly actions."""

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill: ...
    def settle_funding(self, t: int) -> Sequence[FundingPayment]: ...
    def sell_reward(self, t: int, payout: RewardPayout, tokens: float) -> RewardSale | None: ...
    def liquidate(self, t: int) -> Sequence[Liquidation]: ...


class Allowance(Enum):
    """What the strategy may do in a step (a live session derives it from its trading state)."""

    NOTHING = "nothing"        # HALTED: no program runs
    NO_ENTRY = "no_entry"      # REDUCING: no entry; a rebalance may send what the state lets through
    EVERYTHING = "everything"


Guard = Callable[[int], Allowance]
#: Builds the simulated venue layer over a portfolio and a market view (bootstrap passes SimulatedVenues).
WorldFactory = Callable[[Portfolio, MarketView, RunParams], VenueWorld]
_EVERYTHING, _NOTHING = Allowance.EVERYTHING, Allowance.NOTHING


class TradingCycle:
    __slots__ = ("strategy", "params", "mv", "portfolio", "world", "manager", "ledger", "log", "numeraire",
                 "simulated_liquidations", "retry_refused_entry", "funding_note", "_aave", "_lst", "rewards",
                 "entered", "prev_t", "prev_usd", "prev_value", "value", "peg", "value_usd", "risk",
                 "reconciliation", "changed", "rebalanced", "liquidations", "_peg_before", "_marker", "_checks")

    def __init__(self, strategy: Strategy, params: RunParams, market: MarketView, portfolio: Portfolio,
                 world: VenueWorld, manager: ExecutionManager, ledger: Ledger, log: EventLog, *,
                 opening_value: float | None = None, simulated_liquidations: bool = True,
                 retry_refused_entry: bool = False, funding_note: str = "") -> None:
        """``opening_value``: the value before the first step (the backtest's capital); None measures
        it at the first step. ``simulated_liquidations``: the simulated venues liquidate the book
        (backtest); a live book is liquidated by the venues themselves, which reconciliation sees.
        ``retry_refused_entry``: an entry refused before its first fill is tried again next step
        (live: the state or the venue may allow it then); a backtest enters once."""
        self.strategy = strategy
        self.params = params
        self.mv = market
        self.portfolio = portfolio
        self.world = world
        self.manager = manager
        self.ledger = ledger
        self.log = log
        self.numeraire = manager.numeraire
        self.simulated_liquidations = simulated_liquidations
        self.retry_refused_entry = retry_refused_entry
        self.funding_note = funding_note
        sp = params.strategy
        self._aave = params.aave
        self._lst = sp.lst
        rewards = RewardBook(market.reward_payouts, sp.rewards_mode, len(market.timestamps)) \
            if sp.lst == "weETH" and market.reward_payouts else None
        self.rewards = rewards if rewards is not None and rewards.active else None
        self.entered = False
        # the previous step: its index, its protocol USD value and its value in the share currency
        self.prev_t: int | None = None
        self.prev_usd = 0.0
        self.prev_value = opening_value
        # the figures of the last step
        self.value = 0.0                  # mark-to-market, share currency, after the step's actions
        self.peg = 0.0                    # the LSTs' market-vs-oracle part of it
        self.value_usd = 0.0              # protocol value (LSTs at the oracle rate), USD(T)
        self.risk: RiskSnapshot | None = None
        self.reconciliation = 0.0
        self.changed = False              # the holdings changed in the step (an action, not the market)
        self.rebalanced = False           # a rebalance program filled
        self.liquidations = 0             # count over every step
        self._peg_before = 0.0            # the LSTs' peg value at t before the step's actions
        self._marker: Event | None = None  # the rebalance event of the program in flight
        # A mode that never rebalances (its strategy keeps the base `check`) builds no context per step.
        self._checks = type(strategy).check is not Strategy.check

    # ---- the step ---------------------------------------------------------------------------------
    def step(self, t: int, *, funding_due: bool = True, guard: Guard | None = None) -> ProgramOutcome | None:
        """One step with simulated fills (backtest, paper); returns the program's outcome, if one ran.

        ``guard(t)`` runs after the venues acted and before the strategy (a live session's risk
        limits): its `Allowance` says what the strategy may do this step (everything without one)."""
        program = self._begin(t, funding_due, guard)
        outcome = self.manager.run(program, t) if program is not None else None
        self._finish(t, outcome)
        return outcome

    async def step_async(self, t: int, execute: AsyncExecute, *, funding_due: bool = True,
                         guard: Guard | None = None) -> ProgramOutcome | None:
        """`step` with each order awaited (live): ``execute(instruction, t)`` sends it."""
        program = self._begin(t, funding_due, guard)
        outcome = await self.manager.run_async(program, t, execute) if program is not None else None
        self._finish(t, outcome)
        return outcome

    # ---- phases -----------------------------------------------------------------------------------
    def _begin(self, t: int, funding_due: bool, guard: Guard | None) -> Program | None:
        """Attribute the move, let the venues act, and return the program the strategy wants to run."""
        p, mv, num, ledger = self.portfolio, self.mv, self.numeraire, self.ledger
        ledger.start_hour(t)
        self.changed = self.rebalanced = False
        self._marker = None
        if self.prev_t is None:                       # the first step: nothing moved yet
            self.prev_usd = value_usd(p, mv, t)
            self._peg_before = self._peg(t)
            if self.prev_value is None:
                self.prev_value = num.from_usd(self.prev_usd, t) + self._peg_before
        else:
            move = attribute_market_move(p, mv, self.prev_t, t, self.prev_usd, num.currency)
            ledger.book_move(move)
            book = ledger.book
            self._peg_before = move.peg_b
            if funding_due and p.cex:
                for f in self.world.settle_funding(t):
                    self.changed = True
                    book("funding", num.from_usd(f.payment_usd, t))
                    self.log.add(mv.timestamps[t], t, f.venue, "funding", asset=f.asset, amount=f.size,
                                 amount_out=f.payment_usd, price=f.mark, reason=f"rate {f.rate:.8g}{self.funding_note}")
            if self.simulated_liquidations:
                for liq in self.world.liquidate(t):
                    self.liquidations += 1
                    self.changed = True
                    book("liquidation", -num.from_usd(liq.loss_usd, t))
                    if liq.mark_adjustment_usd:
                        # the move was attributed to the hour's marks; the position ended at the breach price
                        book("perp_mtm", num.from_usd(liq.mark_adjustment_usd, t))
                    self.log.add(mv.timestamps[t], t, liq.venue, "liquidation", asset=liq.asset,
                                 amount=liq.repaid_or_closed, amount_out=liq.seized, price=liq.price,
                                 execution_cost_usd=liq.loss_usd, reason=liq.trigger)
        self.risk = risk = snapshot(p, mv, t, self._aave)
        self.value_usd = usd = value_usd(p, mv, t)
        allowance = _EVERYTHING if guard is None else guard(t)     # it may read self.risk / value_usd
        if allowance is _NOTHING or (self.entered and not self._checks):
            return None
        ctx = StrategyContext(p, mv, t, risk, self.params, usd)
        if not self.entered:
            return self.strategy.entry(ctx) if allowance is _EVERYTHING else None   # no entry while reducing
        reason = self.strategy.check(ctx)
        if reason is None:
            return None
        self._marker = self.log.add(mv.timestamps[t], t, "strategy", "rebalance", reason=str(reason))
        return self.strategy.rebalance(ctx, reason)

    def _finish(self, t: int, outcome: ProgramOutcome | None) -> None:
        """Take in the program's outcome, pay rewards due, value and reconcile."""
        p, mv = self.portfolio, self.mv
        if outcome is not None:
            marker = self._marker
            if marker is None:                        # the entry
                # Entered once anything filled (the rebalance check completes a partial entry) or the
                # program ran through; an entry refused before its first fill may be tried again.
                self.entered = outcome.fills > 0 or outcome.completed or not self.retry_refused_entry
            if outcome.fills:
                self.changed = True
                self.rebalanced = marker is not None
                self.risk = snapshot(p, mv, t, self._aave)
                self.value_usd = value_usd(p, mv, t)
            elif marker is not None and self.log.events[-1] is marker:
                self.log.retract(marker)              # a rebalance that needed no instruction
        if self.rewards is not None:
            # The end-of-step balance counts for the hour; a payout due now pays on the period
            # including this hour (an EIGEN week pays on its last day).
            self.rewards.eligible[t] = eligible_eeth(p, mv, t, self._lst or "")
            if self.rewards.due(t):
                self.changed = True
                self.value_usd = self._pay_rewards(t, self.rewards)
                self.risk = snapshot(p, mv, t, self._aave)
        # Without an action the holdings are the ones the market move priced at t: same peg value.
        peg_before = self._peg_before
        peg = self._peg(t) if self.changed else peg_before
        if peg != peg_before:
            self.ledger.book("lst_peg", peg - peg_before)     # what this step's trades did to it
        value = self.numeraire.from_usd(self.value_usd, t) + peg
        total = self.ledger.close_hour()
        prev = self.prev_value
        self.reconciliation = abs(value - (value if prev is None else prev) - total)
        self.value, self.peg = value, peg
        self.prev_t, self.prev_usd, self.prev_value = t, self.value_usd, value

    # ---- between steps ----------------------------------------------------------------------------
    def rebase(self, t: int) -> None:
        """Take the holdings as they are now as the next step's starting point (trades were made
        outside a step, e.g. a flatten): the next attribution starts from here."""
        self.value_usd = value_usd(self.portfolio, self.mv, t)
        self.peg = self._peg(t)
        self.value = self.numeraire.from_usd(self.value_usd, t) + self.peg
        self.prev_t, self.prev_usd, self.prev_value = t, self.value_usd, self.value

    def forget_previous(self) -> None:
        """The next step is a first step again (its market row does not follow the last one)."""
        self.prev_t = None
        self.prev_value = None

    def value_now(self, t: int) -> float:
        """Mark-to-market value of the holdings at index t, share currency (no booking)."""
        return self.numeraire.from_usd(value_usd(self.portfolio, self.mv, t), t) + self._peg(t)

    # ---- helpers ----------------------------------------------------------------------------------
    def _peg(self, t: int) -> float:
        """The LSTs' market-vs-oracle value in the share currency (0 without LSTs)."""
        if self._lst is None or not self.mv.lst_market:
            return 0.0
        return self.numeraire.from_usd(lst_peg_usd(self.portfolio, self.mv, t), t)

    def _pay_rewards(self, t: int, book: RewardBook) -> float:
        """Pay every distribution due at step t: tokens owed on the period's average balance, sold into
        the share currency (net of sale cost and gas) and booked as `rewards`; one REWARD_PAYMENT event
        each. A payout the pack has no price for, or one worth less than its costs, is recorded and not
        paid. Returns the protocol USD value after the payments."""
        mv = self.mv
        for payout in book.due(t):
            average, tokens = book.owed(payout)
            if payout.price_eth is None:
                book.payments.append(RewardPayment(payout, "excluded", average, tokens))
                continue
            sale = self.world.sell_reward(t, payout, tokens)
            if sale is None:
                book.payments.append(RewardPayment(payout, "unclaimed", average, tokens))
                continue
            book.payments.append(RewardPayment(payout, "paid", average, tokens, sale.gross_value, sale.sale_cost,
                                               sale.gas, sale.net_value, sale.gross_eth))
            self.ledger.book("rewards", sale.net_value)
            self.log.add(mv.timestamps[t], t, "etherfi", "REWARD_PAYMENT", asset=payout.token, amount=tokens,
                         to_asset=sale.token_out, amount_out=sale.proceeds, price=payout.price_eth,
                         execution_cost_usd=sale.sale_cost * self.numeraire.usd_factor(t), gas_eth=sale.gas_eth,
                         reason=(f"{payout.label}: {payout.per_eeth:.6g} {payout.token}/eETH on an average "
                                 f"{average:.6g} eETH held; price {payout.price_eth:.6g} ETH/{payout.token} "
                                 f"({payout.price_source})"))
        return value_usd(self.portfolio, mv, t)
