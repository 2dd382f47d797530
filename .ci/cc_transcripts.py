#!/usr/bin/env python3
"""Replay ../shared/cc/transcripts against minishell with three agents, as recorded.

The transcripts were recorded from minimega 2.9 with three miniccc clients,
vmA, vmB and vmC, each in network and UTS namespaces of its own with a fixed
uuid, hostname, address, MAC and tag (../shared/cc/README.md). Here each group
is one `minishell -nostdin` instance with three `minishell-agent`s made the
same way (or the real miniccc, with --miniccc PATH, in a mount namespace that
gives it its product_uuid). With --serial the agents reach the instance over
virtio-serial as a VM's would: each opens a pty (`-serial`) whose other end a
stand-in for qemu's port (tests/vm_relay.py) serves as a unix socket, which the
instance dials (`cc serial`). The groups run side by side, each replaying
its share of the transcripts through its instance's socket
(`minishell -replay -attach`), with `$BASE` replaced by the group's base.

Needs root (namespaces), iproute2 and unshare. Exits 0 only if all passed.
Run: python3 .ci/cc_transcripts.py [--groups N] [--miniccc PATH] [--serial] [NAME-REGEX]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "cc" / "transcripts"
VM_RELAY = Path(__file__).resolve().parents[1] / "tests" / "vm_relay.py"
AGENTS = (  # name, uuid, tag value of `role`, address, MAC (../shared/cc/README.md)
    ("vmA", "11111111-1111-1111-1111-111111111111", "A", "10.0.0.1/24", "52:54:00:00:00:ee"),
    ("vmB", "22222222-2222-2222-2222-222222222222", "B", "10.0.0.2/24", "52:54:00:00:00:3d"),
    ("vmC", "33333333-3333-3333-3333-333333333333", "C", "10.0.0.3/24", "52:54:00:00:00:e1"),
)
SETTLE = 60.0  # seconds for an instance and its agents to come up
HEARTBEAT = 5.0  # seconds between an agent's heartbeats


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + SETTLE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"cc transcripts: {what} did not happen within {SETTLE:g} s")
        time.sleep(0.1)


class Group:
    """One instance and its three agents."""

    def __init__(self, folder: Path, number: int, miniccc: str | None, serial: bool) -> None:
        self.folder = folder
        self.base = folder / "base"
        self.number = number
        self.miniccc = miniccc
        self.serial = serial
        self.ports: list[str] = []  # the VMs' virtio-serial sockets, with --serial
        self.processes: list[subprocess.Popen[bytes]] = []
        self.namespaces: list[str] = []

    def start(self) -> None:
        self.base.mkdir(parents=True)
        log = open(self.folder / "instance.log", "wb")  # noqa: SIM115 - closed by the child
        self.processes.append(subprocess.Popen(
            ["minishell", "-nostdin", "-hostname", "vm", "-base", str(self.base)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        wait_for(lambda: (self.base / "cc").exists(), "the instance's cc socket")
        for agent in AGENTS:
            self._start_agent(*agent)
        if self.serial:
            run("minishell", "-base", str(self.base), "-e", "cc", "serial", *self.ports)
        wait_for(self._all_connected, "three agents connecting")
        if self.miniccc is None:
            for name, _, role, _, _ in AGENTS:
                run("minishell-agent", "-path", f"{self.base}-ccc/{name}", "-tag", "role", role)
        # Tags reach the instance with an agent's next heartbeat (miniccc's come every
        # 5 s): the recordings had their clients tagged long before a test began.
        time.sleep(HEARTBEAT + 1)

    def _all_connected(self) -> bool:
        done = subprocess.run(["minishell", "-base", str(self.base), "-e", ".annotate false cc"],
                              capture_output=True, text=True, check=False)
        return done.stdout.split()[-1:] == ["3"]

    def _start_agent(self, name: str, uuid: str, role: str, address: str, mac: str) -> None:
        namespace = f"msh{self.number}{name}"
        run("ip", "netns", "add", namespace)
        self.namespaces.append(namespace)
        peer = f"msh{self.number}{name}p"
        run("ip", "link", "add", "eth0", "netns", namespace, "type", "veth", "peer", "name", peer)
        run("ip", "-n", namespace, "link", "set", "eth0", "address", mac)
        run("ip", "-n", namespace, "addr", "add", address, "dev", "eth0")
        run("ip", "-n", namespace, "link", "set", "eth0", "up")
        path = f"{self.base}-ccc/{name}"
        link = f"-family unix -parent {self.base}/cc"
        if self.serial:
            link = f"-serial {self._serial_port(name)}"
        if self.miniccc is None:
            agent = f"exec minishell-agent {link} -path {path} -uuid {uuid}"
        else:  # miniccc reads its uuid from the machine's DMI data only
            agent = (f"mount -t tmpfs none /sys/devices/virtual\n"
                     f"mkdir -p /sys/devices/virtual/dmi/id\n"
                     f"echo {uuid} > /sys/devices/virtual/dmi/id/product_uuid\n"
                     f"(while [ ! -S {path}/miniccc ]; do sleep 0.1; done\n"
                     f" {self.miniccc} -path {path} -tag role {role}) &\n"
                     f"exec {self.miniccc} {link} -path {path}")
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed by the child
        self.processes.append(subprocess.Popen(
            ["ip", "netns", "exec", namespace, "unshare", "--uts", "--mount", "sh", "-ec",
             f"hostname {name}\n{agent}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log))

    def _serial_port(self, name: str) -> str:
        """A VM's virtio-serial port: its socket is the instance's to dial; the pty
        returned is the guest's end."""
        socket_path = str(self.folder / f"{name}.port")
        relay = subprocess.Popen([sys.executable, str(VM_RELAY), socket_path],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.processes.append(relay)
        assert relay.stdout is not None
        pty = relay.stdout.readline().strip()
        if not pty:
            raise SystemExit(f"cc transcripts: the serial port of {name} did not open")
        self.ports.append(socket_path)
        return pty

    def replay(self, transcripts: list[Path]) -> subprocess.Popen[str]:
        folder = self.folder / "transcripts"
        folder.mkdir()
        for path in [*transcripts, TRANSCRIPTS / "prolog", TRANSCRIPTS / "epilog",
                     *(path.with_name(path.name + ".want") for path in transcripts)]:
            (folder / path.name).write_text(path.read_text().replace("$BASE", str(self.base)))
        return subprocess.Popen(["minishell", "-replay", "-attach", "-base", str(self.base),
                                 str(folder)], stdout=subprocess.PIPE, text=True)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--miniccc", metavar="PATH", help="real miniccc agents instead")
    parser.add_argument("--serial", action="store_true",
                        help="agents over virtio-serial (ptys behind stand-ins for qemu)")
    parser.add_argument("match", nargs="?", default="", help="only transcripts matching")
    options = parser.parse_args()
    if not TRANSCRIPTS.is_dir():
        print(f"cc transcripts: none at {TRANSCRIPTS}", file=sys.stderr)
        return 2
    transcripts = [path for path in sorted(TRANSCRIPTS.glob("cc_*"))
                   if path.suffix != ".want" and re.search(options.match, path.name)]
    count = max(1, min(options.groups, len(transcripts)))
    work = Path(tempfile.mkdtemp(prefix="cc-transcripts."))
    groups = [Group(work / f"g{number}", number, options.miniccc, options.serial)
              for number in range(count)]
    failed = passed = 0
    try:
        for group in groups:
            group.start()
        replays = [group.replay(transcripts[number::count])
                   for number, group in enumerate(groups)]
        for replay in replays:
            output, _ = replay.communicate()
            summary = re.search(r"^(\d+) passed, (\d+) failed$", output, re.MULTILINE)
            if summary is None:  # the replay could not run at all
                print(output, end="")
                failed += 1
                continue
            print(output[:summary.start()], end="")
            passed += int(summary[1])
            failed += int(summary[2])
    except BaseException:
        failed += 1
        raise
    finally:
        for group in groups:
            group.stop()
        if failed:  # the instances' and agents' logs, for whoever looks into it
            print(f"cc transcripts: logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
