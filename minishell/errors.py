"""The one user-facing error type: its text is exactly what minimega prints after `E: `;
and how to find the error a user should read inside trio's exception groups."""


class CommandError(Exception):
    """A command could not be parsed or run; str(error) is minimega's wording."""


def innermost(error: BaseException) -> BaseException:
    """The first leaf of nested exception groups (a nursery wraps what its body raised),
    or the error itself: the one whose text says what went wrong."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
