"""A VM's virtio-serial port, as qemu exposes it, for tests: `python vm_relay.py SOCKET`.

qemu's `-chardev socket,path=SOCKET,server=on,wait=off` listens on SOCKET and
takes one client at a time; the guest's `/dev/virtio-ports/cc` is the other end.
Here the guest's end is a pseudo-terminal (the agent runs `-serial <pty>`), whose
name is the first line this prints. Like qemu's port:

- what the guest writes while no host is connected is dropped;
- what the host writes waits for the guest to read it (a guest that does not, or
  is not there, holds the host up once the pty's buffer is full), and is read by
  the next agent that opens the port if the last one left it unread;
- the port outlives the guest's openers: the pty stays in raw mode, held open by
  the relay, so an agent may close it and open it again;
- when the relay ends (qemu exits) the host's connection ends.

One thread copies each way, with blocking reads and writes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import tty

CHUNK = 256 * 1024


def to_host(master: int, host: list[socket.socket | None]) -> None:
    """What the guest writes goes to the host connected now, if any."""
    while True:
        data = os.read(master, CHUNK)
        connection = host[0]
        if connection is None:
            continue
        with contextlib.suppress(OSError):  # the host went: the rest is dropped
            connection.sendall(data)


def main() -> None:
    path = sys.argv[1]
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline, before anyone writes
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    print(os.ttyname(slave), flush=True)
    host: list[socket.socket | None] = [None]
    threading.Thread(target=to_host, args=(master, host), daemon=True).start()
    while True:
        connection, _ = listener.accept()
        host[0] = connection
        try:
            while data := connection.recv(CHUNK):
                view = memoryview(data)
                while view:
                    view = view[os.write(master, view):]
        except ConnectionError:
            pass
        finally:
            host[0] = None
            connection.close()


if __name__ == "__main__":
    main()
