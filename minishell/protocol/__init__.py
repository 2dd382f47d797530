"""Wire protocols, sans I/O: no sockets, no trio, nothing but bytes in and out.

`control` is the control socket's (requests, replies and raw pipe mode),
shared by the server and the clients; `gob` and `ron` are cc's (Go's gob
encoding and minimega's ron messages). The clients import `control` on their
start-up path, so this package imports nothing.
"""
