"""An in-memory keyring backend for tests that exercise code paths around the keyring rather than the
OS keyring itself (the OS keyring is tested in test_keyring_os.py)."""
from __future__ import annotations

from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """Passed explicitly to CredentialStore; never selectable by keyring's own discovery (every
    KeyringBackend subclass registers itself, so a viable priority would hijack keyring.get_keyring())."""

    @properties.classproperty
    def priority(cls) -> float:  # type: ignore[override]
        raise RuntimeError("test-only backend: never selected automatically")

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise PasswordDeleteError("not found")
        del self.entries[(service, username)]
