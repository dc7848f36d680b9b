"""Who may talk to `automod serve`: the checks every request passes before it reaches the page or the model.

- a token: the random one in the printed address, as a query parameter (`?token=`, for the page and images) or the
  X-Automod-Token header (the page's requests), compared in constant time, so other users of this machine, who can
  reach the port but never saw the address, cannot drive the server;
- the Host header: one of the names this server was started for (localhost, 127.0.0.1, [::1], or the --host
  given), so a web page on another site that resolves its own name to this machine (DNS rebinding) is refused even
  before its request could carry a token;
- bodies are read up to a limit and no further.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Optional

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_HEADER = "x-automod-token"


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or :: (every interface)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: 'localhost:8765' -> 'localhost', '[::1]:80' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """The token and the host names of one server."""

    def __init__(self, token: str, bind_host: str = "127.0.0.1"):
        self.token = token
        self.names = set(LOOPBACK_NAMES)
        self.any_name = is_wildcard(
            bind_host
        )  # every interface: the machine's names are not known, the token guards
        if not self.any_name:
            self.names.add(bind_host.strip("[]").lower())

    def refusal(self, host_header: Optional[str], token: Optional[str]) -> Optional[tuple[int, str]]:
        """(HTTP status, one-line reason) when a request must be refused, else None."""
        name = host_name(host_header or "")
        if not self.any_name and name not in self.names:
            return 403, (
                f"this automod server answers to {', '.join(sorted(self.names))} only, not to the host "
                f"'{name[:60]}'; open the address automod serve printed."
            )
        if not token:
            return (
                403,
                "this address needs the token that automod serve printed: open the whole address it printed.",
            )
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return 403, "wrong token: open the address that automod serve printed (a new token each start)."
        return None
