"""The exceptions sgdsim raises.

A small tree, in the manner of networkx: every error the library raises on purpose is a
:class:`SgdsimError`. Errors caused by what a user wrote (a topology or scenario file, a
command-line value) are :class:`InputError`; the CLI prints them as one line and exits
with status 2. Anything else escaping the library is a bug.

An :class:`InputError` carries *where* (file and line, or a field path) and *how to fix
it*, so that its one-line message reads::

    topologies/x.yaml:12: links[3].bandwidth: must be positive, got '-5 GB/s' (write e.g. '25 GB/s')
"""

import re

__all__ = ["SgdsimError", "InputError", "UnitError", "NetworkError", "printable"]

# C0 and C1 control characters (but tab and newline), and the Unicode controls that reorder
# or hide text on a terminal (bidirectional overrides and isolates, zero-width marks).
# Lone surrogates (from a "\\ud800" escape) cannot even be encoded: escape them too.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029"
                       "\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def printable(text, *, newlines=True):
    r"""`text` with control characters escaped, safe to print on a terminal.

    A name written in a file (a variant label, a GPU, a key) could hold an escape sequence
    that recolours or rewrites the terminal, or a newline that splits an error line in two.
    Such characters are shown as Python escapes (``\x1b``, ``\u202e``); with
    ``newlines=False``, newlines and tabs are escaped too (for a message that must be one
    line).

    Examples
    --------
    >>> printable("a\x1b[31mred")
    'a\\x1b[31mred'
    >>> printable("two\nlines", newlines=False)
    'two\\nlines'
    >>> printable("25 µs, 1 Gbit/s")
    '25 µs, 1 Gbit/s'
    """
    text = _CONTROLS.sub(lambda m: repr(m.group())[1:-1], str(text))
    if not newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text


class SgdsimError(Exception):
    """Base class of every error sgdsim raises on purpose."""


class InputError(SgdsimError, ValueError):
    """Bad user input: a file, a field or a value that cannot be used as given.

    Parameters
    ----------
    message : str
        What is wrong, e.g. ``"must be positive, got '-5 GB/s'"``.
    file : str or None
        The file the value came from.
    line : int or None
        1-based line in `file`.
    field : str or None
        Dotted path of the value inside the file, e.g. ``"links[3].bandwidth"``.
    fix : str or None
        What to write instead, e.g. ``"write e.g. '25 GB/s'"``.
    """

    def __init__(self, message, *, file=None, line=None, field=None, fix=None):
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        self.fix = fix
        super().__init__(str(self))

    def located(self, *, file=None, line=None, field=None):
        """Return a copy with missing location parts filled in."""
        return InputError(
            self.message,
            file=self.file if self.file is not None else file,
            line=self.line if self.line is not None else line,
            field=self.field if self.field is not None else field,
            fix=self.fix,
        )

    def __str__(self):
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        if self.field:
            where += f"{self.field}: "
        text = where + self.message
        if self.fix:
            text += f" ({self.fix})"
        return text


class UnitError(InputError):
    """A quantity without a unit, with the wrong unit, or not a number."""


class NetworkError(InputError):
    """A transfer or collective that the network model cannot carry out (no path, unknown GPU)."""
