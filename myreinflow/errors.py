"""The one exception type that the CLI turns into a single clear error line."""

import difflib


class UserError(Exception):
    """Bad input from the user: the message names the value and what is allowed."""


def unknown_key(where: str, key: str, allowed) -> UserError:
    """The error for a mistyped key: the key meant, where one is close, else every allowed key."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return UserError(f"{where}: unknown key {key!r}; {hint}")
