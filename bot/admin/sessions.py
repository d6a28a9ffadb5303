"""Signed cookies: the admin's session and the OAuth ``state``. The value is readable (base64 JSON)
but cannot be changed without the key: an HMAC-SHA256 over it, checked in constant time. The key is
made once per install and kept in the database, so sessions survive a restart and every process of
a cluster accepts them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

KEY_META = "admin_session_key"
SESSION_COOKIE = "mjbot_admin"
STATE_COOKIE = "mjbot_admin_state"
STATE_MAX_AGE_S = 600  # the round trip through Discord's consent page


def new_key() -> str:
    return secrets.token_hex(32)


def same(sent: str, expected: str) -> bool:
    """Constant-time equality of two strings, whatever characters they hold (``compare_digest``
    refuses non-ASCII ``str``: a 500 for anyone who sends an accent)."""
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def token_fingerprint(token: str) -> str:
    """Ties a token login's session to the token: changing ``[admin_page] token`` ends them."""
    return hashlib.sha256(b"mjbot-admin-token:" + token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AdminSession:
    user_id: int  # 0 for a token login
    name: str
    via: str  # "discord" or "token"
    csrf: str = field(repr=False)  # sent back with every form
    expires: float
    token_print: str = field(default="", repr=False)  # a token login's token_fingerprint
    issued: float = 0.0  # a logout ends every session of its admin issued before it

    @property
    def who(self) -> str:
        return f"{self.name} ({self.user_id})" if self.via == "discord" else "token login"


class Signer:
    def __init__(self, key: str) -> None:
        self._key = bytes.fromhex(key) if len(key) == 64 else key.encode()

    def __repr__(self) -> str:
        return "Signer(<key>)"

    def seal(self, data: dict[str, Any]) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, value: str | None, *, now: float) -> dict[str, Any] | None:
        """The data of a value this signer sealed and whose ``exp`` has not passed; else None."""
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        payload, signature = value.split(".")
        if not same(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), (int, float)) or data["exp"] <= now:
            return None
        return data

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def session(self, value: str | None, *, now: float) -> AdminSession | None:
        data = self.open(value, now=now)
        if data is None or data.get("kind") != "session":
            return None
        try:
            return AdminSession(
                user_id=int(data["uid"]),
                name=str(data["name"])[:100],
                via=str(data["via"]),
                csrf=str(data["csrf"]),
                expires=float(data["exp"]),
                token_print=str(data.get("tp", "")),
                issued=float(data.get("iat", 0)),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def seal_session(self, session: AdminSession) -> str:
        return self.seal(
            {
                "kind": "session",
                "uid": session.user_id,
                "name": session.name,
                "via": session.via,
                "csrf": session.csrf,
                "exp": session.expires,
                "tp": session.token_print,
                "iat": session.issued,
            }
        )

    def seal_state(self, state: str, next_path: str, *, now: float) -> str:
        return self.seal({"kind": "state", "state": state, "next": next_path, "exp": now + STATE_MAX_AGE_S})

    def state(self, value: str | None, *, now: float) -> tuple[str, str] | None:
        """(the state this browser was given, where it was going), or None."""
        data = self.open(value, now=now)
        if not data or data.get("kind") != "state" or "state" not in data:
            return None
        return str(data["state"]), str(data.get("next", ""))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
