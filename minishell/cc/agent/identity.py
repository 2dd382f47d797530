"""Who the agent says it is: the fields of ron.Client that miniccc fills from the machine.

uuid      the DMI product uuid, trimmed and lower-cased (miniccc's only source; a
          host that is not a VM has none, or cannot read it unprivileged), else a
          random uuid kept in `<path>/uuid` so that a restart keeps its identity;
          `-uuid` overrides both
arch, os  Go's GOARCH and GOOS names for this machine
version   the revision of minimega 2.9 whose protocol the agent speaks, so that a
          real minimega does not log `mismatched miniccc version` for it
hostname  os.Hostname(), or `-hostname`
ips, macs as miniccc's updateNetworkInfo lists them: every interface with a
          hardware address (so not lo), in the kernel's order, its MAC and each of
          its addresses, IPv4 before IPv6, without prefix lengths. Read from rtnetlink
          as Go's net.Interfaces and Interface.Addrs read them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import platform
import socket
import struct
import uuid as uuids
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger("minishell.cc.agent")

DMI_PRODUCT_UUID = "/sys/devices/virtual/dmi/id/product_uuid"
UUID_FILE = "uuid"  # under -path
MINIMEGA_REVISION = "1a428a9c"  # minimega 2.9, whose miniccc sends this as Client.Version

# platform.machine() -> GOARCH, for the machines Go and Linux share names for
_GO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "386", "i486": "386", "i586": "386",
    "i686": "386", "aarch64": "arm64", "arm64": "arm64", "armv6l": "arm", "armv7l": "arm",
    "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
    "riscv64": "riscv64", "mips": "mips", "mipsel": "mipsle", "mips64": "mips64",
    "loongarch64": "loong64",
}


@dataclass(frozen=True, slots=True)
class Identity:
    uuid: str
    hostname: str  # empty: ask the machine at every heartbeat, as miniccc does
    arch: str
    os: str
    version: str = MINIMEGA_REVISION

    def current_hostname(self) -> str:
        return self.hostname or socket.gethostname()


def go_arch() -> str:
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine.lower())


def go_os() -> str:
    return "linux" if os.uname().sysname == "Linux" else os.uname().sysname.lower()


def find_uuid(path: str, dmi_file: str = DMI_PRODUCT_UUID) -> str:
    """The DMI product uuid, else the one kept under `path` (made and kept on first use).

    OSError when neither can be had (the folder cannot be written).
    """
    with contextlib.suppress(OSError):
        with open(dmi_file) as dmi:
            found = dmi.read().strip().lower()
        if found:
            logger.debug("got UUID from %s: %s", dmi_file, found)
            return found
    kept = os.path.join(path, UUID_FILE)
    with contextlib.suppress(FileNotFoundError):
        with open(kept) as file:
            found = file.read().strip().lower()
        if found:
            return found
    made = str(uuids.uuid4())
    os.makedirs(path, 0o777, exist_ok=True)
    partial = f"{kept}.partial"
    with open(partial, "w") as file:
        file.write(made + "\n")
    os.replace(partial, kept)
    logger.info("no DMI product uuid: made %s, kept in %s", made, kept)
    return made


# --- network information, from rtnetlink ------------------------------------------------

_RTM_GETLINK = 18
_RTM_GETADDR = 22
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_IFLA_ADDRESS = 1
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTATTR = struct.Struct("=HH")  # length, type
# Go never takes the address of an IP-in-IP or GRE tunnel for a hardware address
_TUNNEL_TYPES = {4: {768, 776, 778}, 16: {769, 823}}  # by address length: ARPHRD_*
_DUMP_BYTES_MAX = 16 * 1024 * 1024  # a machine with thousands of interfaces fits


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    ips: list[str]
    macs: list[str]


def _align(length: int) -> int:
    return (length + 3) & ~3


def _attributes(data: bytes, at: int, end: int) -> Iterator[tuple[int, bytes]]:
    while at + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, at)
        if length < _RTATTR.size or at + length > end:
            return
        yield kind, data[at + _RTATTR.size:at + length]
        at += _align(length)


def _dump(kind: int) -> Iterator[tuple[int, bytes]]:
    """Every message of one rtnetlink dump (RTM_GETLINK or RTM_GETADDR), as (type, body)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(2.0)
        body = struct.pack("=Bxxx", socket.AF_UNSPEC)  # rtgenmsg, padded
        sock.sendall(_NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), kind,
                                        _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0) + body)
        received = 0
        while True:
            data = sock.recv(1 << 16)
            received += len(data)
            if not data or received > _DUMP_BYTES_MAX:
                raise OSError("rtnetlink dump ended early or grew too long")
            at = 0
            while at + _NLMSG_HEADER.size <= len(data):
                length, message_type, _, _, _ = _NLMSG_HEADER.unpack_from(data, at)
                if length < _NLMSG_HEADER.size:
                    raise OSError("malformed rtnetlink message")
                if message_type == _NLMSG_DONE:
                    return
                if message_type == _NLMSG_ERROR:
                    raise OSError("rtnetlink dump refused")
                yield message_type, data[at + _NLMSG_HEADER.size:at + length]
                at += _align(length)


def _hardware_addresses() -> list[tuple[int, str]]:
    """(index, MAC) of every interface with a hardware address, in the kernel's order."""
    found = []
    for _, body in _dump(_RTM_GETLINK):
        if len(body) < _IFINFOMSG.size:
            continue
        _, link_type, index, _, _ = _IFINFOMSG.unpack_from(body)
        for kind, value in _attributes(body, _IFINFOMSG.size, len(body)):
            if kind != _IFLA_ADDRESS or link_type in _TUNNEL_TYPES.get(len(value), ()):
                continue
            if any(value):  # all zeros (lo) is no address, for Go
                found.append((index, ":".join(f"{byte:02x}" for byte in value)))
    return found


def _go_ip_string(family: int, raw: bytes) -> str | None:
    """net.IP.String(): an IPv4-mapped IPv6 address prints as IPv4."""
    if family == socket.AF_INET and len(raw) >= 4:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family == socket.AF_INET6 and len(raw) >= 16:
        address = ipaddress.IPv6Address(raw[:16])
        return str(address.ipv4_mapped or address)
    return None


def _addresses() -> dict[int, list[str]]:
    """Each interface's addresses, by index, as Go's newAddr picks them."""
    by_index: dict[int, list[str]] = {}
    for _, body in _dump(_RTM_GETADDR):
        if len(body) < _IFADDRMSG.size:
            continue
        family, _, _, _, index = _IFADDRMSG.unpack_from(body)
        attributes = list(_attributes(body, _IFADDRMSG.size, len(body)))
        # With an IFA_LOCAL (point-to-point, and every IPv4 address), IFA_ADDRESS is
        # the peer's: Go takes the first other attribute.
        point_to_point = any(kind == _IFA_LOCAL for kind, _ in attributes)
        for kind, value in attributes:
            if point_to_point and kind == _IFA_ADDRESS:
                continue
            text = _go_ip_string(family, value)
            if text is not None:
                by_index.setdefault(index, []).append(text)
            break
    return by_index


def network_info() -> NetworkInfo:
    """IPs and MACs as miniccc reports them; empty lists (and a log line) if rtnetlink fails."""
    try:
        nics = _hardware_addresses()
        addresses = _addresses()
    except OSError as error:
        logger.error("unable to get interfaces: %s", error)
        return NetworkInfo([], [])
    ips = [ip for index, _ in nics for ip in addresses.get(index, [])]
    return NetworkInfo(ips, [mac for _, mac in nics])
