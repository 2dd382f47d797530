"""A VM's virtio-serial port, as qemu exposes it, for tests: `python vm_relay.py SOCKET`.

qemu's `-chardev socket,path=SOCKET,server=on,wait=off` listens on SOCKET and
takes one client at a time; the guest's `/dev/virtio-ports/cc` is the other end.
Here the guest's end is a pseudo-terminal (the agent runs `-serial <pty>`), whose
name is the first line this prints. Like qemu's port:

- what the guest writes while no host is connected is dropped;
- what the host writes waits for the guest to read it (a guest that does not,
  or is not there, holds the host up once 64 KiB wait), and is read by the next
  agent that opens the port if the last one left it unread;
- the port outlives the guest's openers: the pty stays in raw mode, held open by
  the relay, so an agent may close it and open it again;
- when the relay ends (qemu exits) the host's connection ends.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import tty

CHUNK = 64 * 1024
WAITING_MAX = 64 * 1024


def main() -> None:
    path = sys.argv[1]
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline, before anyone writes
    os.set_blocking(master, False)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    print(os.ttyname(slave), flush=True)
    host: socket.socket | None = None
    to_guest, to_host = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:

        def watch(fileobj: int | socket.socket, reading: bool, writing: bool) -> None:
            events = (selectors.EVENT_READ if reading else 0) | (
                selectors.EVENT_WRITE if writing else 0)
            if events:
                selector.register(fileobj, events)

        while True:
            watch(master, len(to_host) < WAITING_MAX, bool(to_guest))
            if host is None:
                watch(listener, True, False)
            else:
                watch(host, len(to_guest) < WAITING_MAX, bool(to_host))
            ready = selector.select()
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
            for key, mask in ready:
                if key.fileobj is listener:
                    host, _ = listener.accept()
                    host.setblocking(False)
                elif key.fileobj == master:
                    if mask & selectors.EVENT_READ:
                        data = os.read(master, CHUNK)
                        if host is not None:  # else dropped, as qemu drops it
                            to_host += data
                    if mask & selectors.EVENT_WRITE:
                        del to_guest[:os.write(master, to_guest)]
                elif host is not None:
                    try:
                        if mask & selectors.EVENT_READ:
                            data = host.recv(CHUNK)
                            if not data:
                                raise ConnectionResetError
                            to_guest += data
                        if mask & selectors.EVENT_WRITE:
                            del to_host[:host.send(to_host)]
                    except ConnectionError:
                        host.close()
                        host = None
                        to_host.clear()

if __name__ == "__main__":
    main()
