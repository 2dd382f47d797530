"""Where the running command came from: this node, or another node of the mesh.

A command another node sent (`mesh send`) must not reach out to the mesh in turn:
2.9 refuses a nested `mesh send`, and a namespace's broadcast (`pipe`) runs on
the receiving node alone. It is a context variable because such a command runs in
a task of its own, beside this node's commands (one of them may be waiting on
other nodes meanwhile: Session.lend_while), and only it must see the mark.
"""

from __future__ import annotations

import contextvars

FROM_MESH: contextvars.ContextVar[bool] = contextvars.ContextVar("from_mesh", default=False)
