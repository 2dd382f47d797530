"""minimega's command and control (cc): the ron server's side and the agent's."""
