"""minimega's command and control (cc): the ron server's and the agent's sides."""
