"""Object ids in OpenAI's shape: a type prefix and 24 random base62 characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 24


_BYTES = 24  # 192 random bits: the 24 base62 digits taken from them are uniform enough


def new_id(prefix: str) -> str:
    """``new_id("asst")`` → ``asst_…`` (143 random bits: unguessable, so ids double as handles)."""
    # One draw of random bytes, cut into base62 digits (a draw per digit costs ~1 µs each).
    number = int.from_bytes(secrets.token_bytes(_BYTES))
    digits = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(digits)
