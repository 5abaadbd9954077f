"""Venue credentials in the OS keyring, and the redaction that keeps them out of text.

Layout: service ``basis-workstation/<environment>/<venue>``, one entry per field (``api_key``, ``secret``,
``passphrase``, ``rpc_url``, ``private_key``, ``wallet_address``). The keyring API cannot enumerate
entries, so each service also holds a non-secret index entry (username ``__fields__``, a comma list of
the field names present); listing reads only that index, never a secret.

Secrets never go to files: with no usable keyring backend every operation raises ``KeyringUnavailable``
explaining how to get one; there is no plaintext fallback, and plaintext/"null" backends are refused.

Values read for use are wrapped in ``Secret`` (repr/str masked) and registered with the process-wide
log redaction, so a secret that reaches a log call (ccxt logs request headers at DEBUG; web3 logs the
RPC URL, which carries the provider key) is replaced by ``***`` before any handler sees it. Values
that are never stored but are as good as a key for a while — request signatures in a signed URL
(``signature=…``) or header (``OK-ACCESS-SIGN``, ``X-BAPI-SIGN``), and key headers — are masked by
name, whatever their value. The same ``redact`` cleans the crash dialog and its stderr copy.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

SERVICE_PREFIX = "basis-workstation"
ENVIRONMENTS = ("testnet", "production")
INDEX_USERNAME = "__fields__"

FIELDS = ("api_key", "secret", "passphrase", "rpc_url", "private_key", "wallet_address", "executor_address")
# Which fields each venue kind (configs/venues/<name>.yaml `kind`) may hold. On-chain protocol venues
# (aave_v3, lido, ...) have none of their own: they use the wallet and RPC of the `rpc` venue.
FIELDS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    "cex": ("api_key", "secret", "passphrase"),
    # executor_address: the wallet's own LeverageExecutor (python main.py executor deploy stores it).
    "rpc": ("rpc_url", "wallet_address", "private_key", "executor_address"),
    "onchain": (),
}
# Addresses are public; everything else is treated as secret (an RPC URL embeds the provider key).
PUBLIC_FIELDS = frozenset({"wallet_address", "executor_address"})
SECRET_FIELDS = frozenset(FIELDS) - PUBLIC_FIELDS

_MASK = "***"
_MIN_REDACT_LEN = 4          # shorter values would mask innocent text and protect nothing

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_URL = re.compile(r"^(https?|wss?)://[^\s/]+", re.IGNORECASE)

HOW_TO_GET_A_KEYRING = (
    "Credentials are kept only in the OS keyring (never in files). On Linux install a Secret Service "
    "provider and run inside a D-Bus session: `sudo apt-get install gnome-keyring dbus dbus-x11`, then use "
    "the desktop session's keyring, or headless: `dbus-run-session -- sh -c \"printf PASSWORD | "
    "gnome-keyring-daemon --unlock --components=secrets; python main.py ...\"`. macOS Keychain and "
    "Windows Credential Manager work out of the box."
)


class CredentialError(Exception):
    """A credential operation failed; neither message nor hint ever contains a secret value."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message}. {hint}" if hint else message)
        self.message = message
        self.hint = hint


class KeyringUnavailable(CredentialError):
    """No usable (secure) keyring backend; the message says how to get one."""


class InvalidCredential(CredentialError):
    """Bad environment, venue, field or value format."""


class Secret:
    """A secret string whose repr and str are masked; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # noqa: D401 - pickling would write the value somewhere
        raise TypeError("Secret values cannot be pickled")


# ---------------------------------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------------------------------
_registry_lock = threading.Lock()
_registered: set[str] = set()
_factory_installed = False


def register_secret(value: str | Secret | None) -> None:
    """Add a value to the process-wide redaction set (idempotent) and make sure logs are filtered."""
    raw = value.reveal() if isinstance(value, Secret) else value
    if not raw or len(raw) < _MIN_REDACT_LEN:
        return
    with _registry_lock:
        _registered.add(raw)
    install_log_redaction()


def registered_secrets() -> frozenset[str]:
    with _registry_lock:
        return frozenset(_registered)


#: Names whose value is secret wherever it appears: query parameters, header names, JSON keys.
_SENSITIVE = r"[\w-]*(?:sign(?:ature)?|api[-_]?key|access[-_]?key|passphrase|secret|password|private[-_]?key|authorization)[\w-]*"
# ?signature=abc / &apiKey=abc / a urlencoded body starting with signature=abc
_QUERY_VALUE = re.compile(rf"(?i)((?:^|[?&\s'\"(]){_SENSITIVE}=)[^&\s'\"#),]+")
# 'OK-ACCESS-SIGN': 'abc' / "apiKey": "abc" (a dict repr in a log line, or a JSON body)
_KEYED_VALUE = re.compile(rf"(?i)(['\"]{_SENSITIVE}['\"]\s*:\s*['\"])[^'\"]+(['\"])")


def redact(text: str, extra: Iterable[str | Secret | None] = ()) -> str:
    """Replace every registered secret (and ``extra`` values) in ``text`` by ``***``, and every value
    of a signature or key parameter/header/field by name."""
    values = set(registered_secrets())
    for v in extra:
        raw = v.reveal() if isinstance(v, Secret) else v
        if raw and len(raw) >= _MIN_REDACT_LEN:
            values.add(raw)
    # Longest first, so a secret that contains another is masked whole.
    for v in sorted(values, key=len, reverse=True):
        if v in text:
            text = text.replace(v, _MASK)
    if "=" in text:
        text = _QUERY_VALUE.sub(rf"\1{_MASK}", text)
    if ":" in text:
        text = _KEYED_VALUE.sub(rf"\1{_MASK}\2", text)
    return text


def install_log_redaction() -> None:
    """Wrap the LogRecord factory once so every emitted record is redacted at creation.

    A factory (not a Filter) is used because filters attached to a logger do not see records from
    child loggers, and third-party loggers (ccxt, web3, aiohttp) are created by those libraries.
    Installed when the first secret is registered and when a venue client is built (signatures
    need no registered secret to be masked).
    """
    global _factory_installed
    with _registry_lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging's own error handling
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = str(record.exc_info[1])
            if redact(exc_text) != exc_text:
                # the formatted traceback would print the secret: keep only a redacted summary
                record.msg = f"{record.msg} [exception: {type(record.exc_info[1]).__name__}: {redact(exc_text)}]"
                record.exc_info = None
                record.exc_text = None
        return record

    logging.setLogRecordFactory(factory)


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------
def service_name(environment: str, venue: str) -> str:
    return f"{SERVICE_PREFIX}/{environment}/{venue}"


def validate_environment(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise InvalidCredential(f"unknown environment {environment!r}; allowed: {', '.join(ENVIRONMENTS)}")
    return environment


def validate_field(field_name: str, venue_kind: str | None = None) -> str:
    if field_name not in FIELDS:
        raise InvalidCredential(f"unknown credential field {field_name!r}; allowed: {', '.join(FIELDS)}")
    if venue_kind is not None:
        allowed = FIELDS_BY_KIND.get(venue_kind)
        if allowed is None:
            raise InvalidCredential(f"unknown venue kind {venue_kind!r}; allowed: {', '.join(FIELDS_BY_KIND)}")
        if field_name not in allowed:
            hint = ", ".join(allowed) if allowed else "none (on-chain venues use the rpc venue's wallet and RPC)"
            raise InvalidCredential(
                f"field {field_name!r} does not apply to {venue_kind} venues; allowed: {hint}")
    return field_name


def normalize_value(field_name: str, value: str) -> str:
    """Strip the line ending a pipe or prompt adds and check the format (message shows no value)."""
    value = value.strip()
    if not value:
        raise InvalidCredential(f"empty value for {field_name}")
    if any(c.isspace() for c in value):
        raise InvalidCredential(f"{field_name} must not contain whitespace")
    if field_name in PUBLIC_FIELDS and not _HEX_ADDRESS.match(value):
        raise InvalidCredential(f"{field_name} must be 0x followed by 40 hex digits")
    if field_name == "private_key" and not _HEX_KEY.match(value):
        raise InvalidCredential("private_key must be 64 hex digits (optionally 0x-prefixed)")
    if field_name == "rpc_url" and not _URL.match(value):
        raise InvalidCredential("rpc_url must start with http://, https://, ws:// or wss://")
    return value


@dataclass(frozen=True)
class VenueCredentials:
    """The stored fields of one venue in one environment, masked when printed."""

    environment: str
    venue: str
    values: Mapping[str, Secret] = field(default_factory=dict)

    def has(self, field_name: str) -> bool:
        return field_name in self.values

    def reveal(self, field_name: str) -> str | None:
        secret = self.values.get(field_name)
        return secret.reveal() if secret is not None else None

    def missing(self, required: Iterable[str]) -> list[str]:
        return [f for f in required if f not in self.values]

    def secret_values(self) -> list[str]:
        return [s.reveal() for k, s in self.values.items() if k in SECRET_FIELDS]

    @property
    def fields(self) -> list[str]:
        return sorted(self.values)

    def __repr__(self) -> str:
        return f"VenueCredentials({self.environment}/{self.venue}: fields={self.fields})"


# ---------------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------------
def _backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def check_backend(backend: KeyringBackend) -> None:
    """Raise KeyringUnavailable unless ``backend`` stores secrets somewhere secure."""
    from keyring.backends import chainer, fail, null

    name = _backend_name(backend)
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        raise KeyringUnavailable(f"no usable OS keyring backend (keyring selected {name})", HOW_TO_GET_A_KEYRING)
    if isinstance(backend, chainer.ChainerBackend):
        inner = list(backend.backends)
        if not inner:
            raise KeyringUnavailable("no usable OS keyring backend (empty keyring chain)", HOW_TO_GET_A_KEYRING)
        for b in inner:
            check_backend(b)
        return
    if "plaintext" in name.lower() or name.startswith("keyrings.alt.file"):
        raise KeyringUnavailable(f"refusing keyring backend {name}: it stores secrets in a plain file",
                                 HOW_TO_GET_A_KEYRING)


class CredentialStore:
    """Set / read / delete / list venue credentials in the OS keyring.

    All methods are synchronous (keyring is); call them through ``asyncio.to_thread`` from a loop.
    ``backend`` is for tests and embedding; by default keyring's own selection is used and checked.
    """

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._backend = backend
        self._lock = threading.Lock()

    @property
    def backend(self) -> KeyringBackend:
        backend = self._backend if self._backend is not None else keyring.get_keyring()
        check_backend(backend)
        return backend

    def describe_backend(self) -> str:
        return _backend_name(self.backend)

    # -- primitives, with errors translated so no secret or backend stack trace escapes -------------
    def _call(self, what: str, fn, *args, secret_value: str | None = None):
        try:
            return fn(*args)
        except KeyringUnavailable:
            raise
        except keyring.errors.KeyringLocked:
            raise KeyringUnavailable(f"the OS keyring is locked ({what})",
                                     "Unlock it (desktop login, or `printf PASSWORD | gnome-keyring-daemon "
                                     "--unlock`) and retry.") from None
        except (keyring.errors.NoKeyringError, keyring.errors.InitError) as exc:
            raise KeyringUnavailable(f"the OS keyring is not reachable ({what}: {type(exc).__name__})",
                                     HOW_TO_GET_A_KEYRING) from None
        except keyring.errors.PasswordDeleteError:
            return None
        except Exception as exc:  # backend-specific (D-Bus, secretstorage): message may echo input
            raise CredentialError(f"keyring {what} failed ({type(exc).__name__}: {redact(str(exc), [secret_value])})",
                                  HOW_TO_GET_A_KEYRING) from None

    def _read_index(self, backend: KeyringBackend, service: str) -> list[str]:
        raw = self._call("read index", backend.get_password, service, INDEX_USERNAME)
        if not raw:
            return []
        return [f for f in raw.split(",") if f in FIELDS]

    def _write_index(self, backend: KeyringBackend, service: str, fields: Iterable[str]) -> None:
        names = sorted(set(fields))
        if names:
            self._call("write index", backend.set_password, service, INDEX_USERNAME, ",".join(names))
        else:
            self._call("delete index", backend.delete_password, service, INDEX_USERNAME)

    # -- public API -----------------------------------------------------------------------------------
    def set(self, environment: str, venue: str, field_name: str, value: str | Secret,
            venue_kind: str | None = None) -> None:
        validate_environment(environment)
        validate_field(field_name, venue_kind)
        raw = value.reveal() if isinstance(value, Secret) else value
        raw = normalize_value(field_name, raw)
        backend = self.backend
        service = service_name(environment, venue)
        if field_name in SECRET_FIELDS:
            register_secret(raw)
        with self._lock:
            self._call("set", backend.set_password, service, field_name, raw, secret_value=raw)
            self._write_index(backend, service, [*self._read_index(backend, service), field_name])

    def get(self, environment: str, venue: str, field_name: str) -> Secret | None:
        validate_environment(environment)
        validate_field(field_name)
        raw = self._call("get", self.backend.get_password, service_name(environment, venue), field_name)
        if raw is None:
            return None
        if field_name in SECRET_FIELDS:
            register_secret(raw)
        return Secret(raw)

    def delete(self, environment: str, venue: str, field_name: str | None = None) -> list[str]:
        """Delete one field, or every field of the venue when ``field_name`` is None. Returns deleted."""
        validate_environment(environment)
        if field_name is not None:
            validate_field(field_name)
        backend = self.backend
        service = service_name(environment, venue)
        with self._lock:
            present = self._read_index(backend, service)
            targets = [field_name] if field_name is not None else list(FIELDS)
            deleted = []
            for name in targets:
                existed = name in present or \
                    self._call("get", backend.get_password, service, name) is not None
                if existed:
                    self._call("delete", backend.delete_password, service, name)
                    deleted.append(name)
            self._write_index(backend, service, [f for f in present if f not in targets])
        return deleted

    def list_fields(self, environment: str, venue: str) -> list[str]:
        """Names of the stored fields (from the index; no secret is read)."""
        validate_environment(environment)
        return self._read_index(self.backend, service_name(environment, venue))

    def load(self, environment: str, venue: str, fields: Iterable[str] | None = None) -> VenueCredentials:
        """The stored fields of a venue (all, or only ``fields``), for use by an adapter (values
        registered for redaction). Ask only for what the caller uses: a field never read never sits in
        this process's memory (check-venues has no use for the wallet's private key)."""
        validate_environment(environment)
        wanted = None if fields is None else {validate_field(f) for f in fields}
        backend = self.backend
        service = service_name(environment, venue)
        values: dict[str, Secret] = {}
        for name in self._read_index(backend, service):
            if wanted is not None and name not in wanted:
                continue
            raw = self._call("get", backend.get_password, service, name)
            if raw is None:
                continue
            if name in SECRET_FIELDS:
                register_secret(raw)
            values[name] = Secret(raw)
        return VenueCredentials(environment, venue, values)
