"""The one user-facing error type: its text is exactly what minimega prints after `E: `."""


class CommandError(Exception):
    """A command could not be parsed or run; str(error) is minimega's wording."""
