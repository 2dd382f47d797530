"""Wire protocols, sans I/O: no sockets, no trio, nothing but bytes in and out.

`control` is the control socket's (requests, replies and raw pipe mode),
shared by the server and the clients. The clients import it on their
start-up path, so this package imports nothing.
"""
