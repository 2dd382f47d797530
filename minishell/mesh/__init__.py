"""The mesh: several minishell instances share their pipes across machines, on NATS.

`natsd` runs the node's own nats-server, `bridge` carries messages between
trio and nats-py (asyncio, on a thread of its own), `node` keeps the
membership and runs `mesh send`, `owner` decides who schedules each pipe, and
`pipes` connects the local plumber's pipes to the other nodes'. Nothing here
is imported by the `-pipe`/`-e` clients, nor by a minishell without a mesh.
"""
