"""`python -m minishell.cc.agent`: the same as `minishell-agent`."""

import sys

from minishell.cc.agent.cli import main

sys.exit(main())
