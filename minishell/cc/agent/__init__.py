"""minishell-agent: minimega's miniccc in Python, a ron client of minimega or minishell.

Modules, from the wire inward:
    cli           argv to exit status: the agent, or its -pipe and -tag clients
    flags         the command line, by the rules of Go's flag package
    identity      uuid, hostname, arch, os, IPs and MACs, as miniccc finds them
    agent         what outlives a connection, and the loop that redials
    link          one ron connection: handshake, reader, writer, heartbeat
    outbox        the ordered, bounded queue of what a connection sends
    commands      the commands the server sends: in order, exec one at a time
    processes     one command's program: streams, tails, exit, process group
    plumber       the agent's local pipes (minimega's miniplumber on a client)
    files         cc send and cc recv
    local_socket  <path>/miniccc, for -pipe and -tag inside the machine
"""
