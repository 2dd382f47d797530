"""Namespaces as objects: their hosts, their names for pipes, and state kept per namespace."""

from __future__ import annotations

import pytest

from minishell.errors import CommandError
from minishell.namespace import DEFAULT_NAMESPACE, Namespaces


class Closeable:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


def test_the_default_namespace_spans_this_host_others_the_mesh() -> None:
    namespaces = Namespaces("head", peers=lambda: {"node1", "node2"})
    assert namespaces.active.name == DEFAULT_NAMESPACE
    assert namespaces.default.hosts == {"head"}
    assert namespaces.get("exp").hosts == {"node1", "node2"}
    alone = Namespaces("head")
    assert alone.get("exp").hosts == {"head"}  # no mesh: this host runs everything


def test_names_and_listings() -> None:
    namespace = Namespaces("vm").get("mega")
    assert namespace.full_name("p") == "mega//p"
    assert namespace.full_name("other//p") == "other//p"
    assert namespace.shows("minimega//p")  # 2.9's substring test (ns_substring)
    assert not namespace.shows("mega2//p")


def test_switching_checks_the_name() -> None:
    namespaces = Namespaces("vm")
    with pytest.raises(CommandError, match="already in namespace: minimega"):
        namespaces.switch(DEFAULT_NAMESPACE)
    with pytest.raises(CommandError, match="invalid name"):
        namespaces.switch("bad name")
    namespaces.switch("exp")
    assert namespaces.active.name == "exp"
    assert [each.name for each in namespaces] == ["exp", "minimega"]


async def test_destroying_a_namespace_closes_its_state() -> None:
    namespaces = Namespaces("vm")
    namespaces.switch("exp")
    kept = namespaces.active.state(Closeable, Closeable)
    assert namespaces.active.state(Closeable, Closeable) is kept  # made once
    other = namespaces.get("other").state(Closeable, Closeable)
    await namespaces.destroy("exp")
    assert kept.closed and not other.closed
    assert namespaces.active.name == DEFAULT_NAMESPACE  # the active one went
    await namespaces.destroy("all")
    assert other.closed
    assert [each.name for each in namespaces] == [DEFAULT_NAMESPACE]
