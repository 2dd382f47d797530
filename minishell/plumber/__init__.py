"""The trio plumber core: named pipes, readers and writers, vias, pipelines, processes.

It knows nothing of the command language, the session or rendering.
"""

from minishell.plumber.core import Plumber, open_plumber
from minishell.plumber.endpoints import Reader, Writer
from minishell.plumber.errors import PlumberError
from minishell.plumber.outbox import Chunk
from minishell.plumber.pipe import PipeInfo

__all__ = ["Chunk", "PipeInfo", "Plumber", "PlumberError", "Reader", "Writer", "open_plumber"]
