"""Checksums and validity checks that weed out look-alikes of personal data (each runs on
one candidate value, in time linear in its length)."""

from __future__ import annotations

import hashlib
import ipaddress

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
# Verhoeff's tables (Aadhaar's check digit).
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 8, 5),
)
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def digits(value: str) -> str:
    return "".join(char for char in value if char.isdigit())


def luhn_valid(value: str) -> bool:
    number = digits(value)
    if not 13 <= len(number) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    """ISO 13616: the rearranged IBAN read as a number is 1 modulo 97."""
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def ssn_valid(value: str) -> bool:
    area, group, serial = value.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def ipv6_valid(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def phone_valid(value: str) -> bool:
    count = len(digits(value))
    return 9 <= count <= 15 if not value.startswith("+") else 8 <= count <= 15


def base58check_valid(value: str) -> bool:
    """A Bitcoin legacy/P2SH address: base58 with a double-SHA-256 checksum."""
    number = 0
    for char in value:
        index = _BASE58.find(char)
        if index < 0:
            return False
        number = number * 58 + index
    pad = len(value) - len(value.lstrip("1"))
    raw = b"\0" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) != 25:
        return False
    payload, checksum = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit in range(5):
            checksum ^= generator[bit] if (top >> bit) & 1 else 0
    return checksum


def bech32_valid(value: str) -> bool:
    """A SegWit address (bech32 or bech32m checksum, BIP 173/350)."""
    hrp, _, data = value.lower().rpartition("1")
    if not hrp or len(data) < 6 or any(char not in _BECH32 for char in data):
        return False
    expanded = [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]
    return _bech32_polymod(expanded + [_BECH32.index(char) for char in data]) in (1, 0x2BC830A3)


def dni_valid(value: str) -> bool:
    """A Spanish DNI or NIE: the letter is the number modulo 23."""
    compact = value.replace("-", "").upper()
    head = compact[0]
    number = (str("XYZ".index(head)) if head in "XYZ" else head) + compact[1:-1]
    return _DNI_LETTERS[int(number) % 23] == compact[-1]


def nino_valid(value: str) -> bool:
    """A UK National Insurance number (prefixes never issued are refused)."""
    return value[:2].upper() not in _NINO_BAD_PREFIXES


def verhoeff_valid(value: str) -> bool:
    """An Indian Aadhaar number: 12 digits with a Verhoeff check digit."""
    number = digits(value)
    if len(number) != 12:
        return False
    check = 0
    for position, char in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0
