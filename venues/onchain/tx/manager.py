"""TxManager: the one way the workstation writes to a chain.

For every transaction: simulate on the current state (``eth_simulateV1`` where the node has it,
``eth_call`` otherwise) and refuse a revert with its decoded reason -> estimate gas x the configured
margin -> EIP-1559 fees under the configured cap (refused above it) -> allocate the nonce -> sign in
memory -> record the signed bytes in the nonce ledger -> broadcast (through the private RPC when
configured; that endpoint sees ``eth_sendRawTransaction`` and nothing else) -> watch until the
receipt has the configured confirmations and its block is still canonical.

While watching, one task per nonce handles what goes wrong: a transaction the node forgot
(``anvil_dropTransaction``, a mempool eviction) is rebroadcast, which is safe because the same
signed bytes can only execute once; a transaction without a receipt for ``stuck_after_s`` is
replaced at the same nonce with fees raised by at least ``replacement_fee_bump``; a receipt whose
block is no longer canonical (a reorg) is noted and watched again until the transaction is final in
the new chain; a nonce taken by a transaction we never signed is reported as dropped. ``cancel``
replaces a pending transaction with a 0-value self-transfer at the same nonce.

After a restart, ``start()`` reads the ledger, asks the chain about every transaction that was not
final and resolves what it can; what is still open is watched again, or (if the node never saw it)
held until the operator rebroadcasts, cancels or discards it, and no new transaction is signed
meanwhile (it would queue behind the gap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import exceptions as w3e
from web3.types import RPCEndpoint

from engine.domain.onchain_ports import (
    FeeQuote,
    LedgerStatus,
    LedgerTx,
    NonceLedgerPort,
    PendingTx,
    RecoveryReport,
    RevertInfo,
    TransactionError,
    TxResult,
    TxStage,
)
from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.onchain.reader import ChainReader
from venues.onchain.tx import fees as fee_math
from venues.onchain.tx.reverts import DecodedRevert, ErrorRegistry, decode_revert, revert_data_of
from venues.onchain.tx.settings import TxSettings, gwei
from venues.onchain.tx.signer import WalletSigner

log = logging.getLogger(__name__)

CANCEL_GAS = 21_000
FINISHED_KEPT = 256  # finished transactions kept so a late wait() still gets the outcome
_NOT_SUPPORTED = ("method not found", "not supported", "does not exist", "unsupported", "not available")


@dataclass(frozen=True)
class TxCall:
    """What to send: target, calldata, ETH value (wei), a label for the ledger and the operator.

    ``to=None`` creates a contract: ``data`` is then the creation bytecode and its arguments.
    """

    to: str | None
    data: str = "0x"
    value: int = 0
    label: str = ""
    gas_limit: int | None = None  # skip the estimate (fixed-cost transfers)


@dataclass(frozen=True)
class Simulation:
    gas_used: int | None  # eth_simulateV1 reports it; eth_call does not
    return_data: str
    method: str  # "eth_simulateV1" | "eth_call"


@dataclass
class _Attempt:
    tx_hash: str
    raw: str
    max_fee_wei: int
    priority_fee_wei: int
    kind: str  # send | replace | cancel
    gas_limit: int


@dataclass
class _InFlight:
    nonce: int
    call: TxCall
    label: str
    attempts: list[_Attempt]
    last_broadcast: float = field(default_factory=time.monotonic)
    last_rebroadcast: float = 0.0
    replacements: int = 0
    reorgs: int = 0
    missing: bool = False  # from an earlier session, unknown to the node: held for the operator
    task: asyncio.Task | None = None
    mined_noted: set[str] = field(default_factory=set)
    seen_in: dict[str, str] = field(default_factory=dict)  # tx hash -> block hash its receipt named
    final: "_Final | None" = None

    @property
    def newest(self) -> _Attempt:
        return self.attempts[-1]


@dataclass(frozen=True)
class _Final:
    attempt: _Attempt
    receipt: Any
    confirmations: int


class MinedBeforeCancel(TransactionError):
    """A cancel came too late: the transaction it was to replace was mined at the nonce first.
    ``result`` is that transaction, final (what the nonce did)."""

    def __init__(self, venue: str, detail: str, result: TxResult) -> None:
        super().__init__(venue, TxStage.SUBMISSION, detail, operation="cancel", tx_hash=result.tx_hash,
                         nonce=result.nonce)
        self.result = result


def _nonce_taken(exc: TransactionError) -> bool:
    """The node refused a transaction because its nonce is used already."""
    detail = exc.detail.lower()
    return "nonce too low" in detail or "nonce has already been used" in detail or "nonce is too low" in detail


class TxManager:
    """Writes for one wallet on one chain; implements the engine's transaction semantics."""

    def __init__(
        self,
        reader: ChainReader,
        signer: WalletSigner,
        settings: TxSettings,
        ledger: NonceLedgerPort,
        *,
        chain_id: int,
        errors: ErrorRegistry | None = None,
        private_reader: ChainReader | None = None,
    ) -> None:
        self.reader = reader
        self.w3 = reader.w3
        self.signer = signer
        self.settings = settings
        self.ledger = ledger
        self.chain_id = chain_id
        self.errors = errors or ErrorRegistry()
        self.private_reader = private_reader
        self.venue = reader.venue
        self._inflight: dict[int, _InFlight] = {}
        self._finished: OrderedDict[int, _InFlight] = OrderedDict()  # recent outcomes, for late waiters
        self._nonce_lock = asyncio.Lock()
        self._simulate_v1: bool | None = None  # unknown until the first simulation
        self._halted: str | None = None
        self._started = False

    @property
    def address(self) -> str:
        return self.signer.address

    def __repr__(self) -> str:
        return f"TxManager({self.address} on chain {self.chain_id})"

    # ------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> RecoveryReport:
        """Check the chain id, then resolve what the ledger says may still be in flight."""
        chain_id = await self.reader.chain_id()
        if chain_id != self.chain_id:
            raise TransactionError(
                self.venue,
                TxStage.SIGNING,
                f"the RPC serves chain {chain_id}, the configuration expects {self.chain_id}: "
                "nothing will be signed for the wrong chain",
                operation="start",
            )
        report = await self.recover()
        self._started = True
        return report

    def halt(self, reason: str) -> None:
        """Emergency stop: from now on nothing new is signed (cancels of pending ones still are)."""
        self._halted = reason or "halted"

    def resume(self) -> None:
        self._halted = None

    @property
    def halted(self) -> str | None:
        return self._halted

    async def close(self) -> None:
        for inflight in list(self._inflight.values()):
            if inflight.task is not None and not inflight.task.done():
                inflight.task.cancel()
        for inflight in list(self._inflight.values()):
            if inflight.task is not None:
                try:
                    await inflight.task
                except BaseException:  # noqa: BLE001 - closing: outcomes stay in the ledger
                    pass
        if self.private_reader is not None:
            await self.private_reader.close()

    def pending_nonces(self) -> list[int]:
        return sorted(self._inflight)

    # ------------------------------------------------------------------------------------------ reads
    async def _rpc(self, operation: str, fn, *, passthrough: tuple = (), retry: bool = True) -> Any:
        return await self.reader.call(operation, fn, passthrough=passthrough, retry=retry)

    async def _receipt(self, tx_hash: str) -> Any | None:
        try:
            return await self._rpc(
                "eth_getTransactionReceipt",
                lambda: self.w3.eth.get_transaction_receipt(tx_hash),
                passthrough=(w3e.TransactionNotFound,),
            )
        except w3e.TransactionNotFound:
            return None

    async def _known(self, tx_hash: str) -> bool:
        try:
            tx = await self._rpc(
                "eth_getTransactionByHash",
                lambda: self.w3.eth.get_transaction(tx_hash),
                passthrough=(w3e.TransactionNotFound,),
            )
        except w3e.TransactionNotFound:
            return False
        return tx is not None

    async def _nonce_at(self, block: str) -> int:
        return int(
            await self._rpc(
                f"eth_getTransactionCount({block})",
                lambda: self.w3.eth.get_transaction_count(self.address, block),
            )
        )

    async def _head(self) -> int:
        return int(await self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number))

    async def _block_hash(self, number: int) -> str | None:
        try:
            block = await self._rpc(
                "eth_getBlockByNumber",
                lambda: self.w3.eth.get_block(number),
                passthrough=(w3e.BlockNotFound,),
            )
        except w3e.BlockNotFound:
            return None
        return _hex(block["hash"])

    async def fee_quote(self) -> FeeQuote:
        """Fees for a transaction sent now; raises TransactionError(FEES) above the cap."""
        history, tip = await asyncio.gather(
            self._rpc("eth_feeHistory", lambda: self.w3.eth.fee_history(1, "latest", [])),
            self._suggested_tip(),
        )
        next_base = int(history["baseFeePerGas"][-1])
        try:
            return fee_math.quote(next_base, tip, self.settings)
        except fee_math.FeeCapExceeded as exc:
            raise TransactionError(self.venue, TxStage.FEES, str(exc), operation="fees") from None

    async def _suggested_tip(self) -> int:
        try:
            return int(await self._rpc("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))
        except VenueError:
            return self.settings.max_priority_fee_wei  # a node without the method: the configured ceiling

    # ------------------------------------------------------------------------------------------ simulation
    def _decode(self, data: str | None) -> DecodedRevert:
        return decode_revert(data, self.errors)

    def _refuse(self, call: TxCall, decoded: DecodedRevert, how: str) -> TransactionError:
        return TransactionError(
            self.venue,
            TxStage.SIMULATION,
            f"{call.label or 'transaction'} would revert ({how}): {decoded.message}; nothing was signed",
            operation=call.label,
            revert=RevertInfo(decoded.kind, decoded.name, decoded.message, decoded.code),
        )

    def _tx_fields(self, call: TxCall) -> dict[str, Any]:
        fields: dict[str, Any] = {"from": self.address, "data": call.data, "value": call.value}
        if call.to is not None:
            fields["to"] = self.reader.checksum(call.to)
        return fields

    async def simulate(self, call: TxCall) -> Simulation:
        """Run ``call`` on the latest state; raises TransactionError(SIMULATION) with the decoded revert.

        A contract creation is simulated with eth_call (nodes such as anvil cannot build one in
        eth_simulateV1)."""
        if self._simulate_v1 is not False and call.to is not None:
            results = await self._simulate_v1_calls([call])
            if results is not None:
                return results[0]
        try:
            data = await self._rpc(
                "eth_call",
                lambda: self.w3.eth.call(self._tx_fields(call), "latest"),
                passthrough=(w3e.ContractLogicError,),
            )
        except w3e.ContractLogicError as exc:
            raise self._refuse(call, self._decode(revert_data_of(exc)), "eth_call") from None
        return Simulation(None, _hex(data), "eth_call")

    async def simulate_program(
        self,
        calls: Sequence[TxCall],
        *,
        state_overrides: dict[str, dict[str, Any]] | None = None,
        block: int | str = "latest",
    ) -> list[Simulation]:
        """Simulate calls in order on one state, each seeing the previous ones' effects (eth_simulateV1).

        The pre-sign ticket of a multi-step program needs this: ``supply`` after an ``approve`` only
        passes if the approval is applied first. ``state_overrides`` (address -> {"code": ...}, the
        eth_simulateV1 form) put read helpers on the simulated chain without deploying them; ``block``
        pins the state simulated on. Raises when the node has no eth_simulateV1.
        """
        results = await self._simulate_v1_calls(list(calls), state_overrides=state_overrides, block=block)
        if results is None:
            raise TransactionError(
                self.venue,
                TxStage.SIMULATION,
                "this RPC has no eth_simulateV1: a multi-step program cannot be simulated "
                "in one state (single calls still use eth_call)",
                operation="simulate",
            )
        return results

    async def can_simulate_program(self) -> bool:
        """Whether the node runs eth_simulateV1 (probed once with a 0-value self-call)."""
        if self._simulate_v1 is None:
            await self._simulate_v1_calls([TxCall(to=self.address, label="probe eth_simulateV1")])
        return bool(self._simulate_v1)

    async def _simulate_v1_calls(
        self,
        calls: list[TxCall],
        *,
        state_overrides: dict[str, dict[str, Any]] | None = None,
        block: int | str = "latest",
    ) -> list[Simulation] | None:
        block_calls: dict[str, Any] = {
            "calls": [
                {
                    "from": self.address,
                    **({"to": self.reader.checksum(c.to)} if c.to is not None else {}),
                    "data": c.data,
                    "value": hex(c.value),
                }
                for c in calls
            ]
        }
        if state_overrides:
            block_calls["stateOverrides"] = state_overrides
        payload = [
            {"blockStateCalls": [block_calls], "validation": False, "traceTransfers": False},
            hex(block) if isinstance(block, int) else block,
        ]
        try:
            response = await self._rpc(
                "eth_simulateV1",
                lambda: self.w3.provider.make_request(RPCEndpoint("eth_simulateV1"), payload),
            )
        except VenueError as exc:
            if self._simulate_v1 is None and exc.kind is not VenueErrorKind.TIMEOUT:
                # Some providers answer an unknown method with an HTTP error rather than -32601.
                log.info("eth_simulateV1 unavailable (%s); simulating with eth_call", exc.detail)
                self._simulate_v1 = False
                return None
            raise
        if "error" in response:
            message = str(response["error"].get("message", "")).lower()
            if int(response["error"].get("code", 0)) == -32601 or any(m in message for m in _NOT_SUPPORTED):
                self._simulate_v1 = False
                return None
            raise TransactionError(
                self.venue,
                TxStage.SIMULATION,
                f"eth_simulateV1 failed: {response['error'].get('message')}",
                operation="simulate",
            )
        self._simulate_v1 = True
        out: list[Simulation] = []
        for call, result in zip(calls, response["result"][0]["calls"], strict=True):
            data = result.get("returnData", "0x")
            if int(result.get("status", "0x1"), 16) != 1:
                raise self._refuse(call, self._decode(data), "eth_simulateV1")
            out.append(Simulation(int(result["gasUsed"], 16), data, "eth_simulateV1"))
        return out

    async def estimate_gas(self, call: TxCall) -> int:
        try:
            return int(
                await self._rpc(
                    "eth_estimateGas",
                    lambda: self.w3.eth.estimate_gas(self._tx_fields(call)),
                    passthrough=(w3e.ContractLogicError,),
                )
            )
        except w3e.ContractLogicError as exc:
            raise self._refuse(call, self._decode(revert_data_of(exc)), "eth_estimateGas") from None

    # ------------------------------------------------------------------------------------------ sending
    async def send(self, call: TxCall) -> TxResult:
        """The whole pipeline; returns when the transaction is final (raises TransactionError otherwise)."""
        nonce = await self.submit(call)
        return await self.wait(nonce)

    async def submit(self, call: TxCall) -> int:
        """Simulate, price, sign, record and broadcast; returns the nonce (watched in the background)."""
        self._check_can_sign(call)
        await self.simulate(call)
        gas_limit = call.gas_limit or self.settings.gas_limit(await self.estimate_gas(call))
        fees = await self.fee_quote()
        async with self._nonce_lock:
            self._check_can_sign(call)  # an e-stop may have come while we simulated
            nonce = await self._next_nonce()
            attempt = self._sign(nonce, call, gas_limit, fees.max_fee_wei, fees.priority_fee_wei, "send")
            inflight = _InFlight(nonce, call, call.label, [attempt])
            self._inflight[nonce] = inflight
        log.info(
            "%s: nonce %d signed %s (gas limit %d, max fee %s, tip %s)",
            call.label,
            nonce,
            attempt.tx_hash,
            gas_limit,
            gwei(fees.max_fee_wei),
            gwei(fees.priority_fee_wei),
        )
        try:
            await self._broadcast(inflight, attempt)
        except TransactionError:
            self._inflight.pop(nonce, None)
            raise
        self._watch(inflight)
        return nonce

    def _check_can_sign(self, call: TxCall) -> None:
        if self._halted is not None:
            raise TransactionError(
                self.venue,
                TxStage.HALTED,
                f"{call.label or 'transaction'} not signed: trading is halted ({self._halted})",
                operation=call.label,
            )
        held = [f for f in self._inflight.values() if f.missing]
        if held:
            nonces = ", ".join(str(f.nonce) for f in held)
            raise TransactionError(
                self.venue,
                TxStage.RECOVERY,
                f"{call.label or 'transaction'} not signed: nonce {nonces} was signed in an earlier "
                "session and "
                "the node does not know it; rebroadcast, cancel or discard it first (a new transaction would "
                "queue behind the gap)",
                operation=call.label,
            )

    async def _next_nonce(self) -> int:
        chain_pending = await self._nonce_at("pending")
        ours = max(self._inflight, default=-1) + 1
        return max(chain_pending, ours)

    def _sign(self, nonce: int, call: TxCall, gas_limit: int, max_fee: int, tip: int, kind: str) -> _Attempt:
        to, value, data = (
            (self.address, 0, "0x")
            if kind == "cancel"
            else (self.reader.checksum(call.to) if call.to is not None else None, call.value, call.data)
        )
        transaction = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            **({"to": to} if to is not None else {}),  # no "to": a contract creation
            "value": value,
            "data": data,
            "gas": gas_limit,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
        raw, tx_hash = self.signer.sign(transaction)
        label = call.label if kind != "cancel" else f"cancel nonce {nonce} ({call.label})"
        self.ledger.record(
            LedgerTx(
                chain_id=self.chain_id,
                sender=self.address,
                nonce=nonce,
                tx_hash=tx_hash,
                kind=kind,
                label=label,
                status=LedgerStatus.SIGNED,
                raw=raw,
                max_fee_wei=max_fee,
                priority_fee_wei=tip,
                gas_limit=gas_limit,
                created_at=time.time(),
            )
        )
        return _Attempt(tx_hash, raw, max_fee, tip, kind, gas_limit)

    async def _broadcast(self, inflight: _InFlight, attempt: _Attempt, *, fresh: bool = True) -> None:
        """Send the signed bytes. Repeating this is harmless (same hash); refusals are classified.

        ``fresh``: the first broadcast of this attempt. A refused fresh attempt is FAILED (its nonce
        was not consumed by it); a refused rebroadcast is only noted (the attempt may still be live).
        """
        target = self.private_reader or self.reader
        try:
            await target.call(
                "eth_sendRawTransaction",
                lambda: target.w3.eth.send_raw_transaction(attempt.raw),
                passthrough=(w3e.Web3RPCError,),
            )
        except w3e.Web3RPCError as exc:
            message = _rpc_message(exc)
            lowered = message.lower()
            if "already known" in lowered or "known transaction" in lowered or "already imported" in lowered:
                pass
            elif "nonce too low" in lowered and await self._receipt(attempt.tx_hash) is not None:
                pass  # it was mined already
            else:
                if fresh:
                    self.ledger.update(
                        attempt.tx_hash, LedgerStatus.FAILED, detail=f"refused by the node: {message}"
                    )
                    if len(inflight.attempts) > 1 and attempt is inflight.newest:
                        inflight.attempts.pop()  # the earlier attempt is still live
                else:
                    self.ledger.note(attempt.tx_hash, f"rebroadcast refused by the node: {message}")
                raise TransactionError(
                    self.venue,
                    TxStage.SUBMISSION,
                    f"{inflight.label or 'transaction'} (nonce {inflight.nonce}): the node "
                    f"refused it: {message}",
                    operation=inflight.label,
                    tx_hash=attempt.tx_hash,
                    nonce=inflight.nonce,
                ) from None
        except VenueError as exc:
            # Transport failure: it may or may not have arrived. The watcher rebroadcasts while the
            # node does not know it, which is safe, so this is noted, not raised.
            self.ledger.note(attempt.tx_hash, f"broadcast uncertain ({exc.kind.value}): {exc.detail}")
            log.warning("%s: broadcast of nonce %d uncertain: %s", inflight.label, inflight.nonce, exc)
            inflight.last_broadcast = time.monotonic()
            inflight.last_rebroadcast = 0.0  # resend at the next poll if the node does not have it
            return
        else:
            if fresh:
                self.ledger.update(attempt.tx_hash, LedgerStatus.SENT)
        now = time.monotonic()
        inflight.last_broadcast = now
        inflight.last_rebroadcast = now

    def _watch(self, inflight: _InFlight) -> None:
        if inflight.task is None or inflight.task.done():
            inflight.task = asyncio.get_running_loop().create_task(
                self._watch_until_final(inflight), name=f"tx-watch-{inflight.nonce}"
            )

    # ------------------------------------------------------------------------------------------ waiting
    async def wait(self, nonce: int) -> TxResult:
        """Until nonce ``nonce`` is final; raises TransactionError if it reverted, was cancelled, ..."""
        inflight = self._inflight.get(nonce) or self._finished.get(nonce)
        if inflight is None:
            raise TransactionError(
                self.venue, TxStage.SUBMISSION, f"no transaction in flight at nonce {nonce}"
            )
        final = inflight.final
        if final is None:
            if nonce in self._inflight:
                self._watch(inflight)
            assert inflight.task is not None
            final = await asyncio.shield(inflight.task)
        return await self._outcome(inflight, final, expect_cancel=False)

    async def _outcome(self, inflight: _InFlight, final: _Final, *, expect_cancel: bool) -> TxResult:
        attempt, receipt = final.attempt, final.receipt
        result = TxResult(
            label=inflight.label if attempt.kind != "cancel" else f"cancel nonce {inflight.nonce}",
            tx_hash=attempt.tx_hash,
            nonce=inflight.nonce,
            block_number=int(receipt["blockNumber"]),
            block_hash=_hex(receipt["blockHash"]),
            gas_used=int(receipt["gasUsed"]),
            gas_limit=attempt.gas_limit,
            effective_gas_price_wei=int(receipt["effectiveGasPrice"]),
            confirmations=final.confirmations,
            replacements=inflight.replacements,
            reorgs=inflight.reorgs,
        )
        if int(receipt["status"]) != 1:
            decoded = await self._why_reverted(inflight, receipt)
            raise TransactionError(
                self.venue,
                TxStage.EXECUTION,
                f"{inflight.label or 'transaction'} reverted on chain in block "
                f"{result.block_number} (gas paid: {result.gas_used}): {decoded.message}",
                operation=inflight.label,
                tx_hash=attempt.tx_hash,
                nonce=inflight.nonce,
                revert=RevertInfo(decoded.kind, decoded.name, decoded.message, decoded.code),
            )
        if attempt.kind == "cancel" and not expect_cancel:
            raise TransactionError(
                self.venue,
                TxStage.CANCELLED,
                f"{inflight.label or 'transaction'} (nonce {inflight.nonce}) was cancelled: a "
                f"0-value self-transfer took its nonce in block {result.block_number}",
                operation=inflight.label,
                tx_hash=attempt.tx_hash,
                nonce=inflight.nonce,
            )
        if attempt.kind != "cancel" and expect_cancel:
            raise MinedBeforeCancel(
                self.venue,
                f"too late to cancel nonce {inflight.nonce}: {inflight.label} was mined in block "
                f"{result.block_number}",
                result,
            )
        return result

    async def _why_reverted(self, inflight: _InFlight, receipt: Any) -> DecodedRevert:
        """Replay the call on the state before its block to read the revert reason."""
        block = int(receipt["blockNumber"]) - 1
        try:
            await self._rpc(
                "eth_call(replay)",
                lambda: self.w3.eth.call(self._tx_fields(inflight.call), block),
                passthrough=(w3e.ContractLogicError,),
            )
        except w3e.ContractLogicError as exc:
            return self._decode(revert_data_of(exc))
        except VenueError:
            pass
        return DecodedRevert(
            "unknown",
            "REVERTED",
            "reverted (the replay did not reproduce it: the state it saw "
            "was changed by an earlier transaction in the block)",
        )

    async def _watch_until_final(self, inflight: _InFlight) -> _Final:
        dropped_polls = 0
        poll = self.settings.poll_interval_s
        while True:
            found = None
            for attempt in reversed(list(inflight.attempts)):
                receipt = await self._receipt(attempt.tx_hash)
                if receipt is not None:
                    found = (attempt, receipt)
                    break
            if found is not None:
                dropped_polls = 0
                attempt, receipt = found
                final = await self._check_final(inflight, attempt, receipt)
                if final is not None:
                    return final
            elif inflight.seen_in:
                # A receipt we saw is gone: its block was reorganised away with the transaction in it.
                tx_hash, block_hash = next(iter(inflight.seen_in.items()))
                attempt = next(a for a in inflight.attempts if a.tx_hash == tx_hash)
                self._reorged(inflight, attempt, None, block_hash)
            else:
                chain_nonce = await self._nonce_at("latest")
                if chain_nonce > inflight.nonce:
                    dropped_polls += 1
                    if dropped_polls >= 2:  # twice: a lagging receipt index is not a drop
                        self._finish(inflight, None)
                        raise TransactionError(
                            self.venue,
                            TxStage.DROPPED,
                            f"{inflight.label or 'transaction'} (nonce {inflight.nonce}) was dropped: "
                            "the nonce was "
                            "used by a transaction not signed by this workstation",
                            operation=inflight.label,
                            nonce=inflight.nonce,
                        )
                else:
                    dropped_polls = 0
                    await self._keep_alive(inflight)
            await asyncio.sleep(poll)

    async def _check_final(self, inflight: _InFlight, attempt: _Attempt, receipt: Any) -> _Final | None:
        number, block_hash = int(receipt["blockNumber"]), _hex(receipt["blockHash"])
        seen = inflight.seen_in.get(attempt.tx_hash)
        if seen is not None and seen != block_hash:
            self._reorged(inflight, attempt, number, seen)  # moved to another block: a reorg
        if await self._block_hash(number) != block_hash:
            self._reorged(inflight, attempt, number, block_hash)
            return None
        inflight.seen_in = {attempt.tx_hash: block_hash}
        if attempt.tx_hash not in inflight.mined_noted:
            inflight.mined_noted.add(attempt.tx_hash)
            self.ledger.update(
                attempt.tx_hash, LedgerStatus.MINED, block_number=number, block_hash=block_hash
            )
        confirmations = await self._head() - number + 1
        if confirmations < self.settings.confirmations:
            return None
        # Final check: the receipt and its block, read again now that enough blocks are on top.
        again = await self._receipt(attempt.tx_hash)
        if (
            again is None
            or _hex(again["blockHash"]) != block_hash
            or await self._block_hash(number) != block_hash
        ):
            self._reorged(inflight, attempt, number, block_hash)
            return None
        self._finish(inflight, attempt, receipt)
        inflight.final = _Final(attempt, receipt, confirmations)
        return inflight.final

    def _reorged(self, inflight: _InFlight, attempt: _Attempt, number: int | None, block_hash: str) -> None:
        inflight.reorgs += 1
        inflight.mined_noted.discard(attempt.tx_hash)
        inflight.seen_in.clear()
        where = f"block {number} ({block_hash[:12]}…)" if number is not None else f"block {block_hash[:12]}…"
        detail = f"reorg: {where} that held it is no longer canonical; watching for it again"
        log.warning("%s (nonce %d): %s", inflight.label, inflight.nonce, detail)
        self.ledger.update(attempt.tx_hash, LedgerStatus.SENT, detail=detail)
        inflight.last_broadcast = time.monotonic()  # the stuck clock restarts: it is pending again
        inflight.last_rebroadcast = 0.0  # and the node may have lost it: resend promptly

    async def _keep_alive(self, inflight: _InFlight) -> None:
        """Not mined: rebroadcast if the node forgot it; replace it if it has been stuck too long."""
        now = time.monotonic()
        newest = inflight.newest
        rebroadcast_every = max(self.settings.poll_interval_s, min(self.settings.stuck_after_s / 4, 30.0))
        if now - inflight.last_rebroadcast >= rebroadcast_every and not await self._known(newest.tx_hash):
            self.ledger.note(newest.tx_hash, "not known to the node: rebroadcast")
            log.warning("%s: nonce %d unknown to the node, rebroadcasting", inflight.label, inflight.nonce)
            last_broadcast = inflight.last_broadcast
            try:
                await self._broadcast(inflight, newest, fresh=False)
            except TransactionError as exc:  # e.g. nonce taken meanwhile: the drop check sees it
                log.warning(
                    "%s: rebroadcast of nonce %d refused: %s", inflight.label, inflight.nonce, exc.detail
                )
            inflight.last_broadcast = last_broadcast  # a rebroadcast does not reset the stuck clock
        if now - inflight.last_broadcast < self.settings.stuck_after_s:
            return
        if inflight.replacements >= self.settings.max_replacements:
            raise TransactionError(
                self.venue,
                TxStage.STUCK,
                f"{inflight.label or 'transaction'} (nonce {inflight.nonce}) still not mined after "
                f"{inflight.replacements} fee bumps (max fee now {gwei(newest.max_fee_wei)}); "
                "it stays pending: "
                "cancel it or raise the fee cap",
                operation=inflight.label,
                tx_hash=newest.tx_hash,
                nonce=inflight.nonce,
            )
        await self._replace(inflight, newest.kind if newest.kind == "cancel" else "replace")

    async def _replace(self, inflight: _InFlight, kind: str) -> _Attempt:
        newest = inflight.newest
        market: FeeQuote | None
        try:
            market = await self.fee_quote()
        except TransactionError:
            market = None  # above the cap: bump from our own fees only
        try:
            fees = fee_math.bumped(
                newest.max_fee_wei,
                newest.priority_fee_wei,
                market,
                self.settings,
                what="cancel" if kind == "cancel" else "replacement",
            )
        except fee_math.FeeCapExceeded as exc:
            raise TransactionError(
                self.venue,
                TxStage.FEES,
                f"{inflight.label} (nonce {inflight.nonce}): {exc}",
                operation=inflight.label,
                nonce=inflight.nonce,
            ) from None
        gas_limit = CANCEL_GAS if kind == "cancel" else newest.gas_limit
        attempt = self._sign(
            inflight.nonce, inflight.call, gas_limit, fees.max_fee_wei, fees.priority_fee_wei, kind
        )
        inflight.attempts.append(attempt)
        inflight.replacements += 1
        log.warning(
            "%s: nonce %d %s with max fee %s, tip %s",
            inflight.label,
            inflight.nonce,
            "cancelled" if kind == "cancel" else "replaced",
            gwei(fees.max_fee_wei),
            gwei(fees.priority_fee_wei),
        )
        try:
            await self._broadcast(inflight, attempt)
        except TransactionError as exc:
            if kind == "cancel":
                raise  # the operator asked for it: say it did not go out
            # The node kept the earlier attempt (e.g. "replacement transaction underpriced"): keep
            # watching it; the refusal counts as one of the allowed replacements.
            inflight.last_broadcast = time.monotonic()
            log.warning("%s: replacement of nonce %d refused: %s", inflight.label, inflight.nonce, exc.detail)
        return attempt

    def _finish(self, inflight: _InFlight, winner: _Attempt | None, receipt: Any = None) -> None:
        for attempt in inflight.attempts:
            if winner is not None and attempt is winner:
                status = LedgerStatus.CONFIRMED if int(receipt["status"]) == 1 else LedgerStatus.REVERTED
                self.ledger.update(
                    attempt.tx_hash,
                    status,
                    block_number=int(receipt["blockNumber"]),
                    block_hash=_hex(receipt["blockHash"]),
                )
            elif winner is not None:
                self.ledger.update(
                    attempt.tx_hash, LedgerStatus.REPLACED, detail=f"nonce taken by {winner.tx_hash}"
                )
            else:
                self.ledger.update(
                    attempt.tx_hash, LedgerStatus.DROPPED, detail="nonce taken by a foreign transaction"
                )
        self._inflight.pop(inflight.nonce, None)
        self._finished[inflight.nonce] = inflight
        while len(self._finished) > FINISHED_KEPT:
            self._finished.popitem(last=False)

    # ----------------------------------------------------------------------------------- operator actions
    async def cancel(self, nonce: int) -> TxResult:
        """Replace the pending transaction at ``nonce`` with a 0-value self-transfer; wait for it.

        Returns the cancel's result; raises MinedBeforeCancel (with the mined transaction's result) if
        the original, or one of its replacements, took the nonce first — also when that happened while
        the cancel was on its way and the node refused the cancel as "nonce too low": the chain is
        asked which of our transactions was mined, and that is the answer.
        """
        inflight = self._inflight.get(nonce)
        if inflight is None:
            finished = self._finished.get(nonce)
            if finished is not None and finished.final is not None:   # resolved already: say how
                return await self._outcome(finished, finished.final, expect_cancel=True)
            raise TransactionError(
                self.venue, TxStage.SUBMISSION, f"no transaction pending at nonce {nonce}", operation="cancel"
            )
        inflight.missing = False
        try:
            await self._replace(inflight, "cancel")
        except TransactionError as exc:
            if not _nonce_taken(exc):
                raise
            # The nonce was used while the cancel was being sent: the watcher finds which of our
            # attempts holds it (and waits for its confirmations), or that a foreign one does.
            log.warning("cancel of nonce %d refused (%s): finding which transaction took it", nonce, exc.detail)
        self._watch(inflight)
        assert inflight.task is not None
        final = await asyncio.shield(inflight.task)
        return await self._outcome(inflight, final, expect_cancel=True)

    async def rebroadcast(self, nonce: int) -> None:
        """Send a held transaction from an earlier session again and watch it."""
        inflight = self._inflight.get(nonce)
        if inflight is None:
            raise TransactionError(
                self.venue,
                TxStage.SUBMISSION,
                f"no transaction pending at nonce {nonce}",
                operation="rebroadcast",
            )
        inflight.missing = False
        await self._broadcast(inflight, inflight.newest, fresh=False)
        self.ledger.update(inflight.newest.tx_hash, LedgerStatus.SENT, detail="rebroadcast after restart")
        self._watch(inflight)

    def discard(self, nonce: int) -> None:
        """Forget a held transaction the node never saw; its nonce will be reused by the next send."""
        inflight = self._inflight.get(nonce)
        if inflight is None or not inflight.missing:
            raise TransactionError(
                self.venue,
                TxStage.SUBMISSION,
                f"nonce {nonce} is not a held transaction (only those can be discarded)",
                operation="discard",
            )
        for attempt in inflight.attempts:
            self.ledger.update(
                attempt.tx_hash, LedgerStatus.FAILED, detail="discarded by the operator: never mined"
            )
        self._inflight.pop(nonce)

    # ------------------------------------------------------------------------------------------ recovery
    async def recover(self) -> RecoveryReport:
        """Resolve the ledger's unfinished transactions against the chain (see the module doc)."""
        report = RecoveryReport(self.chain_id, self.address)
        rows = self.ledger.pending(self.chain_id, self.address)
        chain_nonce = await self._nonce_at("latest")
        for nonce in sorted({r.nonce for r in rows}):
            if nonce in self._inflight:
                continue
            attempts_rows = [
                r
                for r in self.ledger.by_nonce(self.chain_id, self.address, nonce)
                if r.status is not LedgerStatus.FAILED
            ]
            attempts = [
                _Attempt(r.tx_hash, r.raw, r.max_fee_wei, r.priority_fee_wei, r.kind, r.gas_limit)
                for r in attempts_rows
            ]
            first = attempts_rows[0]
            call = _call_from_raw(
                next((r.raw for r in attempts_rows if r.kind != "cancel"), first.raw), first.label
            )
            inflight = _InFlight(nonce, call, first.label, attempts, replacements=len(attempts) - 1)
            receipts = [(a, await self._receipt(a.tx_hash)) for a in attempts]
            mined = [(a, r) for a, r in receipts if r is not None]
            if mined:
                self._inflight[nonce] = inflight
                attempt, receipt = mined[-1]
                final = await self._check_final(inflight, attempt, receipt)
                if final is not None:
                    report.resolved.extend(self.ledger.by_nonce(self.chain_id, self.address, nonce))
                    continue
                self._watch(inflight)
                report.pending.append(
                    PendingTx(
                        nonce,
                        attempt.tx_hash,
                        first.label,
                        LedgerStatus.MINED,
                        True,
                        "mined, waiting for confirmations",
                    )
                )
                continue
            if chain_nonce > nonce:
                self._inflight[nonce] = inflight
                self._finish(inflight, None)
                report.resolved.extend(self.ledger.by_nonce(self.chain_id, self.address, nonce))
                continue
            known = [a for a in attempts if await self._known(a.tx_hash)]
            self._inflight[nonce] = inflight
            if known:
                self._watch(inflight)
                report.pending.append(
                    PendingTx(
                        nonce,
                        known[-1].tx_hash,
                        first.label,
                        LedgerStatus.SENT,
                        True,
                        "in the node's mempool: watched again",
                    )
                )
            else:
                inflight.missing = True
                report.pending.append(
                    PendingTx(
                        nonce,
                        attempts[-1].tx_hash,
                        first.label,
                        LedgerStatus.SIGNED,
                        False,
                        "signed but unknown to the node: rebroadcast, cancel or discard",
                    )
                )
        return report


def _call_from_raw(raw: str, label: str) -> TxCall:
    """What a signed transaction from the ledger does (to, value, data), to replay or replace it."""
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    data = fields.get("data", b"")
    return TxCall(
        to=to_checksum_address(fields["to"]) if fields.get("to") else None,  # empty: a creation
        data=_hex(data) if data else "0x",
        value=int(fields.get("value", 0)),
        label=label,
        gas_limit=int(fields["gas"]),
    )


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _rpc_message(exc: BaseException) -> str:
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return str(response["error"].get("message", exc))
    return str(exc)


def registry_from(abis: Iterable[list]) -> ErrorRegistry:
    return ErrorRegistry(abis)
