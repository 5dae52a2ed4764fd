"""Quantities with units, as users write them in YAML and on the command line.

Every number that carries a unit is written with it (``25 GB/s``, ``100 Gbit/s``,
``100Gbps``, ``2 us``, ``0.5 ms``, ``100MB``, ``312 TFLOP/s``) and parsed to SI base
units: bytes/s, seconds, bytes, FLOP/s. Decimal prefixes are powers of 1000
(``GB = 1e9`` bytes), binary ones powers of 1024 (``GiB = 2**30``). Case matters for
the base unit only where it must: ``B`` is a byte, ``b`` or ``bit`` a bit.

Why not pint: pint treats bits and bytes as dimensionless, reads ``Gbps`` as gigabaud
and ``Gb`` as gilbert, so ``25 GHz`` would pass for a bandwidth. The grammar here is
small and closed, and every rejection says what would be accepted.

Numbers are written in ASCII digits, as :data:`NUMBER_PATTERN` (the number grammar of
YAML 1.2 and of JSON Schema's editors): ``٣ GB/s`` or ``１ s`` is refused here exactly as
the schemas refuse it, although Python's ``float`` would read it. A quantity must be finite
and at most :data:`MAX_QUANTITY` in base units (``1e999 s`` is too large, not negative).

Examples
--------
>>> parse_bandwidth("100 Gbit/s")
12500000000.0
>>> parse_time("2 us")
2e-06
>>> parse_bytes("100MB")
100000000.0
"""

import re

from .errors import UnitError

__all__ = [
    "parse_bandwidth",
    "parse_time",
    "parse_bytes",
    "parse_flops",
    "parse_quantity",
    "format_bandwidth",
    "format_time",
    "format_bytes",
    "format_flops",
    "NUMBER_PATTERN",
    "MAX_QUANTITY",
    "MAX_NUMBER",
]

NUMBER_PATTERN = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
"""A decimal number in ASCII digits: YAML 1.2's float grammar (and JSON's, with a sign)."""

MAX_NUMBER = 1e15
"""Largest magnitude of a plain number in a file or on the command line (no setting needs
more; beyond it sums and conversions to steps could overflow)."""

MAX_QUANTITY = 1e30
"""Largest quantity accepted, in base units (bytes, bytes/s, s, FLOP/s): far beyond any
cluster, and small enough that sums over billions of steps stay finite."""

_PREFIX = {
    "": 1.0,
    "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
}
# Divisors, not factors: 5 / 1e6 is exactly 5e-06 while 5 * 1e-6 is not.
_TIME_DIVISOR = {"": 1.0, "m": 1e3, "u": 1e6, "µ": 1e6, "μ": 1e6, "n": 1e9, "p": 1e12}

_NUMBER = r"(?P<num>" + NUMBER_PATTERN + r")\s*"
_P = r"(?P<prefix>Ki|Mi|Gi|Ti|Pi|[kKMGTPE]?)"

# kind -> (regex of the unit after the number, base factor per matched unit, examples)
_BYTE_UNIT = r"(?P<base>B|bytes?|b|bits?)"
_GRAMMAR = {
    "bandwidth": (
        re.compile(
            _NUMBER + _P + r"(?:(?P<base>B|bytes?|b|bits?)\s*/\s*s(?:ec)?|(?P<bps>[Bb])ps)$"
        ),
        "'25 GB/s', '100 Gbit/s' or '100Gbps'",
    ),
    "bytes": (re.compile(_NUMBER + _P + _BYTE_UNIT + "$"), "'100 MB', '1.5 GiB' or '4096 B'"),
    "time": (
        re.compile(_NUMBER + r"(?P<tprefix>[muµμnp]?)(?P<tunit>s|sec|seconds?)$|"
                   + _NUMBER.replace("(?P<num>", "(?P<num2>") + r"(?P<long>min|h)$"),
        "'2 us', '0.5 ms' or '1 s'",
    ),
    "flops": (
        re.compile(_NUMBER + _P + r"(?:FLOP/s|FLOPS|flop/s|flops|FLOP/S)$"),
        "'312 TFLOP/s' or '19.5 TFLOPS'",
    ),
}

_WHAT = {"bandwidth": "a bandwidth", "bytes": "a size in bytes", "time": "a time",
         "flops": "a compute rate"}


def parse_quantity(text, kind, *, field=None):
    """Parse `text` as a quantity of `kind` and return it in SI base units.

    Parameters
    ----------
    text : str
        The quantity as written, e.g. ``"25 GB/s"``.
    kind : {"bandwidth", "bytes", "time", "flops"}
        What the quantity must be: bandwidth in bytes/s, size in bytes, time in seconds,
        compute rate in FLOP/s.
    field : str, optional
        Name of the field the text came from, carried into the error.

    Returns
    -------
    float
        The value in bytes/s, bytes, seconds or FLOP/s.

    Raises
    ------
    UnitError
        If `text` is not a string with a number and a unit of the right kind (a bare
        number is refused: units are never implied).

    Examples
    --------
    >>> parse_quantity("0.5 ms", "time")
    0.0005
    """
    regex, examples = _GRAMMAR[kind]
    fix = f"write {_WHAT[kind]} with its unit, e.g. {examples}"
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected {_WHAT[kind]} with a unit, got {text!r}", field=field, fix=fix)
    if not isinstance(text, str):
        raise UnitError(f"{text!r} has no unit", field=field, fix=fix)
    match = regex.match(text.strip())
    if match is None:
        if re.fullmatch(_NUMBER, text.strip()):
            raise UnitError(f"{text!r} has no unit", field=field, fix=fix)
        raise UnitError(f"{text!r} is not {_WHAT[kind]}", field=field, fix=fix)
    groups = match.groupdict()
    if kind == "time":
        if groups.get("num2") is not None:
            value = float(groups["num2"]) * {"min": 60.0, "h": 3600.0}[groups["long"]]
        else:
            value = float(groups["num"]) / _TIME_DIVISOR[groups["tprefix"]]
    else:
        value = float(groups["num"]) * _PREFIX[groups["prefix"]]
        if kind in ("bandwidth", "bytes"):
            base = groups.get("base") or groups.get("bps")
            if base in ("b", "bit", "bits"):
                value /= 8.0
    if not abs(value) <= MAX_QUANTITY:                       # inf, or beyond any cluster
        raise UnitError(f"{text!r} is too large: {_WHAT[kind]} is at most 1e30 "
                        f"{_BASE_UNIT[kind]}", field=field, fix=fix)
    return value


def parse_bandwidth(text, *, field=None):
    """Parse a bandwidth such as ``"25 GB/s"`` or ``"100Gbps"`` to bytes/s."""
    return parse_quantity(text, "bandwidth", field=field)


def parse_time(text, *, field=None):
    """Parse a time such as ``"2 us"`` or ``"0.5 ms"`` to seconds."""
    return parse_quantity(text, "time", field=field)


def parse_bytes(text, *, field=None):
    """Parse a size such as ``"100MB"`` or ``"1 GiB"`` to bytes."""
    return parse_quantity(text, "bytes", field=field)


def parse_flops(text, *, field=None):
    """Parse a compute rate such as ``"312 TFLOP/s"`` to FLOP/s."""
    return parse_quantity(text, "flops", field=field)


def _scaled(value, unit, steps):
    for factor, prefix in steps:
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


_DECIMAL = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]


def format_bandwidth(bytes_per_s):
    """Format bytes/s for people: ``format_bandwidth(2.5e10) == '25 GB/s'``."""
    return _scaled(bytes_per_s, "B/s", _DECIMAL)


def format_bytes(nbytes):
    """Format bytes for people: ``format_bytes(1e8) == '100 MB'``."""
    return _scaled(nbytes, "B", _DECIMAL)


def format_flops(flops):
    """Format FLOP/s for people: ``format_flops(3.12e14) == '312 TFLOP/s'``."""
    return _scaled(flops, "FLOP/s", _DECIMAL)


def format_time(seconds):
    """Format seconds for people: ``format_time(2e-6) == '2 us'``."""
    if seconds == 0 or abs(seconds) >= 1:
        return f"{seconds:.4g} s"
    for factor, unit in ((1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
        if abs(seconds) >= factor:
            return f"{seconds / factor:.4g} {unit}"
    return f"{seconds:.4g} s"


_BASE_UNIT = {"bandwidth": "B/s", "bytes": "B", "time": "s", "flops": "FLOP/s"}
