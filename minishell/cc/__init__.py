"""minimega's command and control (cc): agents that run commands with pipes for stdio."""
