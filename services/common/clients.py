"""Who a client is for a rate limit or a login throttle: the address it is counted by.

Shared by tracking's lookup limits and the console's login throttle, so both count an IPv6
client the same way. Pure (stdlib only).
"""
from __future__ import annotations

import functools
import ipaddress


# Parsing an address was a tenth of tracking's limiter's work on every request; bounded, since
# an IPv6 client can present as many addresses as it likes.
@functools.lru_cache(maxsize=65_536)
def client_subject(address: str) -> str:
    """What a client is counted by: its IPv4 address (an IPv4-mapped IPv6 one too), or the /64
    of an IPv6 one (what one subscriber usually holds: rotating within it does not escape a
    limit); anything unparseable as given, cut to 64 characters."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
