"""The sequential leverage loop on chain: stake -> supply -> borrow, one iteration after another, with the
same adapters as every single action (no executor contract, no flash loan).

The iterations are the engine's (``engine.math.leverage.sequential_loop``: how many, and whether each
ends with a borrow, from the equity, target LTV, iteration cap and minimum borrow), and so is the
sizing of each: stake what the previous iteration borrowed, supply every LST unit that staking gave,
borrow ``target LTV x ETH staked`` (what ``engine.strategies.onchain_legs.lever_up`` does in a
backtest). Staking and wrapping only add collateral; the iteration's AAVE part (approve, supply, borrow,
unwrap the borrowed WETH for the next stake) is one program whose pre-sign ticket is simulated and
checked against the health-factor floor before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.domain.onchain_ports import TxResult
from engine.domain.venue_ports import AaveAccountData
from engine.math.leverage import sequential_loop
from venues.onchain.aave_v3 import AaveV3Adapter
from venues.onchain.etherfi import EtherFiAdapter
from venues.onchain.lido import LidoAdapter
from venues.onchain.program import OnchainProgram, ProgramRunner, WatchedToken
from venues.onchain.weth import WethAdapter

DEBT = "WETH"


@dataclass(frozen=True)
class LoopIteration:
    iteration: int
    staked_eth: Decimal
    supplied: Decimal  # LST units supplied to AAVE
    borrowed: Decimal  # WETH borrowed (0 on the last iteration)
    results: tuple[TxResult, ...]

    @property
    def gas_used(self) -> int:
        return sum(r.gas_used for r in self.results)


@dataclass(frozen=True)
class SequentialLoopReport:
    iterations: tuple[LoopIteration, ...]
    account_after: AaveAccountData

    @property
    def gas_used(self) -> int:
        return sum(i.gas_used for i in self.iterations)


class SequentialLoop:
    """Loop ``staking``'s LST on ``aave`` against WETH debt for the wallet the adapters share."""

    def __init__(
        self,
        aave: AaveV3Adapter,
        staking: LidoAdapter | EtherFiAdapter,
        weth: WethAdapter,
        *,
        target_ltv: Decimal,
        max_iterations: int | None,
        min_borrow_eth: Decimal,
    ) -> None:
        if not Decimal(0) <= target_ltv < Decimal(1):
            raise ValueError(f"target_ltv must be in [0, 1), got {target_ltv}")
        self.aave = aave
        self.staking = staking
        self.weth = weth
        self.target_ltv = target_ltv
        self.max_iterations = max_iterations
        self.min_borrow_eth = min_borrow_eth
        self.runner = ProgramRunner(aave.ctx)

    def plan(self, equity_eth: Decimal):
        """The engine's iterations for ``equity_eth`` (stake and borrow sizes, before any fill)."""
        return sequential_loop(float(equity_eth), float(self.target_ltv), self.max_iterations,
                               float(self.min_borrow_eth))

    def _watch(self) -> tuple[WatchedToken, ...]:
        lst = self.staking.lst
        return (
            WatchedToken("ETH", None),
            WatchedToken(lst, self.aave.token(lst)),
            WatchedToken(f"a{lst} (AAVE collateral)", self.aave.a_token(lst), kind="collateral"),
            WatchedToken("WETH debt (AAVE)", self.aave.debt_token(DEBT), kind="debt"),
        )

    async def run(self, equity_eth: Decimal, *, hf_floor: Decimal) -> SequentialLoopReport:
        """Loop ``equity_eth`` of the wallet's ETH (gas comes from the rest of its ETH)."""
        lst = self.staking.lst
        steps = self.plan(equity_eth)
        done: list[LoopIteration] = []
        stake = equity_eth
        for step in steps:
            results: list[TxResult] = []
            before = await self.staking.balances()
            results.append(await self.staking.stake(stake))
            gained_base = (await self.staking.balances()).base - before.base
            results.append(await self.staking.wrap(gained_base))
            supplied = (await self.staking.balances()).wrapped - before.wrapped
            borrow = (stake * self.target_ltv).quantize(Decimal("1e-18"), rounding="ROUND_DOWN") \
                if step.borrow_eth > 0 else Decimal(0)
            calls = [*await self.aave.approve_calls(lst, supplied), await self.aave.supply_call(lst, supplied)]
            if borrow > 0:
                calls += [await self.aave.borrow_call(DEBT, borrow), self.weth.unwrap_call(borrow)]
            program = OnchainProgram(
                f"sequential loop iteration {step.iteration}: supply {supplied:.6f} {lst}"
                + (f", borrow {borrow:.6f} WETH" if borrow else ""),
                tuple(calls), self._watch(), self.aave.pool_address,
                (f"staked {stake} ETH for {supplied} {lst}; target LTV {self.target_ltv}",),
            )
            outcome = await self.runner.execute(program, hf_floor=hf_floor)
            results.extend(outcome.results)
            done.append(LoopIteration(step.iteration, stake, supplied, borrow, tuple(results)))
            stake = borrow
        return SequentialLoopReport(tuple(done), await self.aave.account())
