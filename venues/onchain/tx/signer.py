"""WalletSigner: signs transactions in memory with the private key read from the OS keyring.

The key lives only in this object's private slot, as bytes, for as long as the signer lives. It is
registered with the process-wide log redaction (every hex form), never put in a message, a repr, a
pickle or a file, and signing failures are re-raised as a fresh exception that carries only the
exception type, so no library message or chained traceback can echo it.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from engine.domain.onchain_ports import TransactionError, TxStage
from venues.credentials import CredentialError, CredentialStore, Secret, register_secret

PRIVATE_KEY_FIELD = "private_key"
WALLET_FIELD = "wallet_address"


class WalletSigner:
    """One wallet's signing key. ``address`` is public; the key is not reachable from outside."""

    __slots__ = ("_key", "_address", "venue")

    def __init__(self, private_key: Secret, *, venue: str, expected_address: str | None = None) -> None:
        raw = private_key.reveal().strip()
        hex_key = raw[2:] if raw[:2] in ("0x", "0X") else raw
        for form in (hex_key, hex_key.lower(), hex_key.upper()):
            register_secret(form)
        self.venue = venue
        try:
            key = bytes.fromhex(hex_key)
            if len(key) != 32:
                raise ValueError
            address = Account.from_key(key).address
        except Exception:  # noqa: BLE001 - the value must not reach the message
            raise TransactionError(
                venue,
                TxStage.SIGNING,
                "the stored private_key is not a 32-byte hex key",
                operation="load key",
            ) from None
        if expected_address is not None and to_checksum_address(expected_address) != address:
            raise TransactionError(
                venue,
                TxStage.SIGNING,
                f"the stored private_key belongs to {address}, not to the stored wallet_address "
                f"{to_checksum_address(expected_address)}: fix one of them",
                operation="load key",
            )
        self._key = key
        self._address = address

    @classmethod
    def from_keyring(cls, store: CredentialStore, environment: str, venue: str) -> "WalletSigner":
        """Read ``private_key`` (and ``wallet_address`` to cross-check, if stored) from the keyring."""
        try:
            key = store.get(environment, venue, PRIVATE_KEY_FIELD)
            wallet = store.get(environment, venue, WALLET_FIELD)
        except CredentialError as exc:
            raise TransactionError(
                venue, TxStage.SIGNING, f"cannot read the keyring: {exc.message}", operation="load key"
            ) from None
        if key is None:
            raise TransactionError(
                venue,
                TxStage.SIGNING,
                f"no private_key stored for {venue} ({environment}): python main.py credentials set "
                f"--env {environment} --venue {venue} --field private_key",
                operation="load key",
            )
        return cls(key, venue=venue, expected_address=wallet.reveal() if wallet is not None else None)

    @property
    def address(self) -> str:
        return self._address

    def sign(self, transaction: dict[str, Any]) -> tuple[str, str]:
        """(raw signed transaction, its hash), both 0x-hex."""
        try:
            signed = Account.sign_transaction(transaction, self._key)
        except Exception as exc:  # noqa: BLE001 - only the type may leave
            raise TransactionError(
                self.venue,
                TxStage.SIGNING,
                f"signing failed ({type(exc).__name__}); the transaction fields were rejected by eth-account",
                operation="sign",
            ) from None
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def __repr__(self) -> str:
        return f"WalletSigner({self._address}, key=***)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a WalletSigner holds a private key and cannot be pickled")

    def __getstate__(self):
        raise TypeError("a WalletSigner holds a private key and cannot be copied or pickled")

    def __copy__(self):
        raise TypeError("a WalletSigner holds a private key and cannot be copied")

    def __deepcopy__(self, memo):
        raise TypeError("a WalletSigner holds a private key and cannot be copied")
