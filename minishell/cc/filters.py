"""`cc filter`: which agents a command goes to (minimega's ron.Filter and cliCCFilter).

minishell has no VMs: an agent's hostname is its VM name, so `name=vmA`
matches the agent whose hostname is vmA, and every other key that is not
one of the filter's own fields is a tag the agent reported (`-tag`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from minishell.errors import CommandError
from minishell.protocol import ron
from minishell.protocol.control import go_json_string

_FIELDS = ("uuid", "hostname", "arch", "os", "ip", "mac")


def parse_filter(pairs: Sequence[str]) -> ron.Filter:
    """The filter `cc filter k=v ...` sets; it replaces the whole filter."""
    found = ron.Filter()
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            raise CommandError(f"malformed id=value pair: {pair}")
        lowered = key.lower()
        if lowered == "uuid":
            found.uuid = value.lower()
        elif lowered in _FIELDS:
            setattr(found, lowered, value)
        else:
            # An explicit `tag=k:v` (or `tag=k=v`), or any other key: a tag. As in
            # minimega, the first part is split again at `=` or else at `:`.
            parts = [value] if lowered == "tag" else [key, value]
            if "=" in parts[0]:
                parts = parts[0].split("=", 1)
            elif ":" in parts[0]:
                parts = parts[0].split(":", 1)
            if found.tags is None:
                found.tags = {}
            found.tags[parts[0]] = parts[1] if len(parts) == 2 else ""
    return found


def filter_text(found: ron.Filter | None) -> str:
    """Filter.String(): `os=linux && ip=10.0.0.0/24`; tags in name order (Go's map
    order is random)."""
    if found is None:
        return ""
    parts = [f"{field}={getattr(found, field)}"
             for field in ("uuid", "hostname", "arch", "os", "ip", "mac")
             if getattr(found, field)]
    parts += [f"{key}={value}" for key, value in sorted((found.tags or {}).items())]
    return " && ".join(parts)


def filter_row(found: ron.Filter) -> list[str]:
    """The `cc filter` listing's row; tags as Go's json.Marshal writes a map."""
    tags = "{" + ",".join(f"{go_json_string(key)}:{go_json_string(value)}"
                          for key, value in sorted((found.tags or {}).items())) + "}"
    return [found.uuid, found.hostname, found.arch, found.os, found.ip, found.mac, tags]


def matches(found: ron.Filter | None, client: ron.Client, tags: dict[str, str]) -> bool:
    """Client.Matches: every field set must match; `tags` are those the agent has
    reported so far, and `name` is its hostname."""
    if found is None:
        return True
    for field in ("uuid", "hostname", "arch", "os"):
        wanted = getattr(found, field)
        if wanted and wanted != getattr(client, field):
            return False
    tags = {**tags, "name": client.hostname}
    if any(tags.get(key, "") != value for key, value in (found.tags or {}).items()):
        return False
    return _matches_ip(found.ip, client.ips) and (not found.mac or found.mac in client.macs)


def _matches_ip(wanted: str, addresses: Sequence[str]) -> bool:
    """An IP, or a CIDR that any of the agent's addresses is inside."""
    if not wanted:
        return True
    try:
        network = ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False
    for address in addresses:
        try:
            if ipaddress.ip_address(address.split("/", 1)[0]) in network:
                return True
        except ValueError:
            continue
    return False
