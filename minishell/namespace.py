"""Namespaces: a name, the hosts it spans, and the state commands keep per namespace.

Pipes live in one plumber for all namespaces, as in minimega: a namespace only
names them (`ns//pipe`) and filters the listings. The hosts are where a
command broadcast to the namespace runs (just this host until a mesh joins).
Commands that keep state per namespace (cc's clients, filter and responses)
keep it in `Namespace.state`, and it goes when the namespace is destroyed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from minishell.errors import CommandError

DEFAULT_NAMESPACE = "minimega"
_NAME = re.compile(r"^[a-zA-Z0-9-_.]+$")
_INVALID_NAME = "invalid name; must only include letters, numbers, hyphens and underscores"


class NamespaceState(Protocol):
    """Something a command keeps per namespace."""

    async def aclose(self) -> None:
        """The namespace is destroyed: stop whatever runs for it."""


State = TypeVar("State", bound=NamespaceState)


class Namespace:
    def __init__(self, name: str, hosts: set[str]) -> None:
        self.name = name
        self.hosts = hosts
        self._states: dict[type[NamespaceState], NamespaceState] = {}

    @property
    def vlans(self) -> str:
        """The `namespace` listing's vlans column: minimega's default range, in its namespace."""
        return "101-4096" if self.name == DEFAULT_NAMESPACE else ""

    def full_name(self, pipe: str) -> str:
        """fqnsPipe: a pipe name without `//` lives in this namespace."""
        return pipe if "//" in pipe else f"{self.name}//{pipe}"

    def shows(self, name: str) -> bool:
        """Whether listings in this namespace show a pipe or pipeline name.

        A substring test, not a prefix test: minimega 2.9 does it this way and
        the conformance transcript ns_substring pins it (spec §11).
        """
        return f"{self.name}//" in name

    def state(self, kind: type[State], make: Callable[[], State]) -> State:
        """The namespace's state of this kind, made on first use."""
        found = self.find(kind)
        if found is None:
            found = make()
            self.keep(found)
        return found

    def find(self, kind: type[State]) -> State | None:
        """The namespace's state of this kind, if it has one."""
        found = self._states.get(kind)
        assert found is None or isinstance(found, kind)
        return found

    def keep(self, state: NamespaceState) -> None:
        """Keep a state (made by its owner, perhaps started as a task) until the
        namespace is destroyed."""
        self._states[type(state)] = state

    async def aclose(self) -> None:
        states, self._states = list(self._states.values()), {}
        for state in states:
            await state.aclose()


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise CommandError(_INVALID_NAME)


class Namespaces:
    """Every namespace, and the active one. The default one always exists."""

    def __init__(self, hostname: str, peers: Callable[[], set[str]] = set) -> None:
        self._hostname = hostname
        self._peers = peers  # the mesh's other hosts, which new namespaces span
        self._known: dict[str, Namespace] = {}
        self.default = self.get(DEFAULT_NAMESPACE)
        self.active = self.default

    def set_peers(self, peers: Callable[[], set[str]]) -> None:
        """The mesh's other hosts, which namespaces made from now on span."""
        self._peers = peers

    def __iter__(self) -> Iterator[Namespace]:
        """In name order."""
        return iter([self._known[name] for name in sorted(self._known)])

    def get(self, name: str) -> Namespace:
        """The namespace, created if needed (minimega's GetOrCreateNamespace).

        The default namespace spans only this host; another spans every host
        of the mesh but this one (the head node), or this one alone without a
        mesh.
        """
        found = self._known.get(name)
        if found is None:
            hosts = {self._hostname} if name == DEFAULT_NAMESPACE else self._peers()
            found = self._known[name] = Namespace(name, hosts or {self._hostname})
        return found

    def switch(self, name: str) -> None:
        """`namespace <name>`."""
        check_name(name)
        if name == self.active.name:
            raise CommandError(f"already in namespace: {name}")
        self.active = self.get(name)

    async def destroy(self, name: str) -> None:
        """`clear namespace <name>` (`all`: every one): its state goes, not its pipes.

        The default namespace is made anew, empty; destroying the active one
        goes back to the default.
        """
        doomed = list(self._known) if name == "all" else [name]
        for doomed_name in doomed:
            namespace = self._known.pop(doomed_name, None)
            if namespace is not None:
                await namespace.aclose()
        self.default = self.get(DEFAULT_NAMESPACE)
        if self.active.name in doomed:
            self.active = self.default
        else:
            self.active = self.get(self.active.name)
