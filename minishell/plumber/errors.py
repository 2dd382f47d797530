"""The plumber's one user-facing error type."""


class PlumberError(Exception):
    """A plumber operation was refused; str(error) is minimega's exact text."""
