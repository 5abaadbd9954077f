"""Decode revert data into something an operator can act on.

A revert carries ABI-encoded bytes: ``Error(string)`` (``require(x, "msg")``), ``Panic(uint256)``
(checked arithmetic, asserts) or a custom error (``error Foo(uint256)``, identified by its 4-byte
selector). AAVE v3 reverts with numbered strings (``Error("35")``), which mean nothing on their own,
so those are looked up by code; Uniswap's short strings ("STF", "Too little received") get a hint.
Custom errors are decoded from every ABI registered with the ``ErrorRegistry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from eth_abi import decode as abi_decode
from eth_utils import keccak

from venues.onchain.tx.aave_errors import AAVE_V3_ERRORS

ERROR_STRING_SELECTOR = "08c379a0"  # keccak("Error(string)")[:4]
PANIC_SELECTOR = "4e487b71"  # keccak("Panic(uint256)")[:4]

# Solidity's Panic codes (docs.soliditylang.org, "Panic via assert and Error via require").
PANIC_CODES: Mapping[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function pointer",
}

# Revert strings of Uniswap v3 (v3-periphery TransferHelper / SwapRouter, swap-router-contracts) and
# what they mean for the operator.
KNOWN_STRINGS: Mapping[str, str] = {
    "Too little received": "the swap would return less than amountOutMinimum (the price moved beyond the "
    "configured maximum slippage)",
    "Too much requested": "an exact-output swap would need more than amountInMaximum",
    "Transaction too old": "the swap's deadline passed before it was mined",
    "STF": "token transferFrom failed (allowance or balance too low)",
    "ST": "token transfer failed",
    "SPL": "sqrtPriceLimitX96 is on the wrong side of the current price",
    "AS": "the swap amount is zero",
    "LOK": "the pool is locked (reentrancy)",
}


@dataclass(frozen=True)
class DecodedRevert:
    """What a revert said. ``name`` is the stable identifier to test against; ``message`` is for people."""

    kind: str  # "aave" | "string" | "panic" | "custom" | "empty" | "unknown"
    name: str  # HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD, "Too little received", ...
    message: str
    data: str = ""  # the raw revert bytes (0x-hex)
    code: str | None = None  # AAVE code ("35") or panic code ("0x11")
    args: tuple = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message


def _error_signature(entry: Mapping[str, Any]) -> str:
    def type_of(param: Mapping[str, Any]) -> str:
        kind = param["type"]
        if kind.startswith("tuple"):
            return "(" + ",".join(type_of(c) for c in param.get("components", [])) + ")" + kind[5:]
        return kind

    return f"{entry['name']}({','.join(type_of(p) for p in entry.get('inputs', []))})"


class ErrorRegistry:
    """Custom errors by selector, collected from ABIs (the protocols', our executor's)."""

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]] = ()) -> None:
        self._errors: dict[str, tuple[str, list[str]]] = {}
        for abi in abis:
            self.register(abi)

    def register(self, abi: Iterable[Mapping[str, Any]]) -> None:
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = _error_signature(entry)
            selector = keccak(text=signature)[:4].hex()
            types = signature[signature.index("(") + 1 : -1]
            self._errors[selector] = (entry["name"], _split_types(types))

    def lookup(self, selector: str) -> tuple[str, list[str]] | None:
        return self._errors.get(selector.lower().removeprefix("0x"))


def _split_types(types: str) -> list[str]:
    """Top-level comma split of an ABI type list (tuples keep their commas)."""
    out, depth, current = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        out.append(current)
    return out


def decode_revert(data: str | bytes | None, registry: ErrorRegistry | None = None) -> DecodedRevert:
    """Decode revert bytes (0x-hex or bytes). Never raises: unknown data is reported as such."""
    raw = _as_bytes(data)
    hex_data = "0x" + raw.hex()
    if not raw:
        return DecodedRevert("empty", "EMPTY_REVERT", "reverted without a reason (no revert data)", hex_data)
    selector, body = raw[:4].hex(), raw[4:]
    if selector == ERROR_STRING_SELECTOR:
        try:
            (text,) = abi_decode(["string"], body)
        except Exception:  # noqa: BLE001 - malformed payload: say so, keep the bytes
            return DecodedRevert(
                "unknown",
                "MALFORMED_ERROR_STRING",
                f"reverted with malformed Error(string) data {hex_data[:74]}",
                hex_data,
            )
        return _from_string(text, hex_data)
    if selector == PANIC_SELECTOR:
        try:
            (code,) = abi_decode(["uint256"], body)
        except Exception:  # noqa: BLE001
            code = -1
        meaning = PANIC_CODES.get(code, "unknown panic code")
        return DecodedRevert(
            "panic",
            f"Panic(0x{code:02x})" if code >= 0 else "Panic(?)",
            f"Panic 0x{code:02x}: {meaning}" if code >= 0 else "Panic with malformed code",
            hex_data,
            code=f"0x{code:02x}" if code >= 0 else None,
        )
    if registry is not None:
        known = registry.lookup(selector)
        if known is not None:
            name, types = known
            try:
                args = tuple(abi_decode(types, body)) if types else ()
            except Exception:  # noqa: BLE001
                args = ()
            rendered = ", ".join(_render(a) for a in args)
            return DecodedRevert("custom", name, f"{name}({rendered})", hex_data, args=args)
    return DecodedRevert(
        "unknown", f"0x{selector}", f"reverted with unknown error selector 0x{selector}", hex_data
    )


def _from_string(text: str, hex_data: str) -> DecodedRevert:
    if text in AAVE_V3_ERRORS:
        name, meaning = AAVE_V3_ERRORS[text]
        return DecodedRevert("aave", name, f"AAVE error {text} {name}: {meaning}", hex_data, code=text)
    hint = KNOWN_STRINGS.get(text)
    message = f"{text!r}: {hint}" if hint else repr(text)
    return DecodedRevert("string", text, f"reverted: {message}", hex_data)


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _as_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = str(data).strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def revert_data_of(exc: BaseException) -> str | None:
    """The revert bytes carried by a web3 exception (ContractLogicError.data, or the RPC error's data)."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return data
    if isinstance(data, (bytes, bytearray)):
        return "0x" + bytes(data).hex()
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, Mapping):
        error = response.get("error")
        if isinstance(error, Mapping):
            inner = error.get("data")
            if isinstance(inner, str) and inner.startswith("0x"):
                return inner
            if isinstance(inner, Mapping) and isinstance(inner.get("data"), str):
                return inner["data"]
    return None
