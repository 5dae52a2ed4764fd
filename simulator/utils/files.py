"""Files in and out: what sgdsim reads from users, and writing whole files or nothing.

Reading
-------
Every file a user names (topologies, scenarios, suites, baselines, results, ``.npz``
data) is checked by :func:`check_input` before it is opened, or read by
:func:`read_input`:

* it must be a **regular file**: a FIFO, a device, a socket or a directory is refused with
  one line (reading one could block forever or never end), and the file is opened without
  blocking, so a FIFO put in its place at the last moment cannot hang sgdsim either;
* a text input (YAML, JSON) is at most :data:`MAX_TEXT_BYTES`; larger ones are refused
  before they are read (no topology or scenario comes near it);
* a file that is not UTF-8 text is reported with the line of its first bad byte.

Writing
-------
Every file sgdsim writes (results, traces, baselines, reports, sweep files, figures,
topologies, schemas, copies of shipped files) goes through :func:`write_text_atomic` or
:func:`write_bytes_atomic`: the data is written to a hidden temporary file beside the target
(``.NAME.PID.XXXX.tmp``) and renamed over it, so a reader never sees half a file, and a
failed write (a full disk, a read-only directory, Ctrl-C) leaves neither a partial target
nor the temporary file behind. A failed write is bad input, not a crash: it raises
:class:`~simulator.utils.errors.InputError` (exit status 2 from the command line).

Files that grow while a command runs (a sweep's ``runs.jsonl``, a search's ``trials.jsonl``)
are appended line by line with :func:`append_whole`: one write and an fsync per line, and a
write that fails is cut back off, so the file keeps only whole lines.

Commands check every output location with :func:`check_output` (a directory of files:
:func:`check_output_dir`) **before** the work starts,
so that a long run never ends in "no such directory". The path ``-`` means standard output
(:data:`STDOUT`), as users expect: the writers then write to ``sys.stdout``.
"""

import errno
import os
import secrets
import stat
import sys

from .errors import InputError

__all__ = ["STDOUT", "MAX_TEXT_BYTES", "check_input", "read_input", "read_text_input",
           "check_output", "check_output_dir", "write_text_atomic", "write_bytes_atomic",
           "write_figure", "append_whole", "is_stdout", "FIGURE_FORMATS"]

STDOUT = "-"
"""The output path that means standard output."""

FIGURE_FORMATS = (".png", ".svg", ".pdf")
"""Extensions of the figures sgdsim draws; ``-`` (standard output) gets PNG."""

MAX_TEXT_BYTES = 64 * 2**20
"""Largest YAML or JSON input read (64 MiB): a 100,000-link explicit topology is ~6 MB."""

_WHAT_IS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket",
            stat.S_IFDIR: "a directory"}


def is_stdout(path):
    """True if `path` is ``-``, standard output."""
    return path is not None and os.fspath(path) == STDOUT


# --------------------------------------------------------------------------- reading
def _not_regular(mode):
    return _WHAT_IS.get(stat.S_IFMT(mode), "not a regular file")


def _read_error(err, file, field):
    if isinstance(err, FileNotFoundError):
        return InputError("no such file", file=file, field=field, fix="check the path")
    if isinstance(err, IsADirectoryError):
        return InputError("is a directory, not a file", file=file, field=field,
                          fix="name a file")
    reason = err.strerror or str(err)
    return InputError(f"cannot read the file: {reason}", file=file, field=field,
                      fix="check the path and its permissions")


def check_input(path, *, field=None, max_bytes=None):
    """Raise InputError unless `path` is a regular file that can be read; return it as str.

    Parameters
    ----------
    path : str or os.PathLike
    field : str, optional
        Where the path was given (``--topology``), for the error.
    max_bytes : int, optional
        Refuse a larger file.

    Examples
    --------
    >>> import tempfile, os
    >>> fifo = os.path.join(tempfile.mkdtemp(), "pipe.yaml"); os.mkfifo(fifo)
    >>> try:
    ...     check_input(fifo)
    ... except InputError as err:
    ...     print(err.message, f"({err.fix})")
    is a FIFO (named pipe), not a regular file (name a file; sgdsim does not read from devices, pipes or sockets)
    """
    file = os.fspath(path)
    try:
        info = os.stat(file)
    except OSError as err:
        raise _read_error(err, file, field) from None
    _check_stat(info, file, field, max_bytes)
    return file


def _check_stat(info, file, field, max_bytes):
    if not stat.S_ISREG(info.st_mode):
        what = _not_regular(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory, not a file", file=file, field=field,
                             fix="name a file")
        raise InputError(f"is {what}, not a regular file", file=file, field=field,
                         fix="name a file; sgdsim does not read from devices, pipes or sockets")
    if max_bytes is not None and info.st_size > max_bytes:
        from .units import format_bytes

        raise InputError(f"is {format_bytes(info.st_size)}, more than the "
                         f"{format_bytes(max_bytes)} sgdsim reads from a text file",
                         file=file, field=field,
                         fix="is this the right file? topologies and scenarios are far smaller")


def read_input(path, *, field=None, max_bytes=MAX_TEXT_BYTES):
    """The bytes of a regular file of at most `max_bytes`, or InputError.

    The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` before reading, so a
    FIFO never blocks the open or the read.
    """
    file = os.fspath(path)
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise _read_error(err, file, field) from None
    try:
        _check_stat(os.fstat(fd), file, field, max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            if max_bytes is not None and sum(map(len, chunks)) > max_bytes:  # it grew
                _check_stat(os.fstat(fd), file, field, max_bytes)
        return b"".join(chunks)
    except OSError as err:
        raise _read_error(err, file, field) from None
    finally:
        os.close(fd)


def read_text_input(path, *, field=None, max_bytes=MAX_TEXT_BYTES):
    """:func:`read_input` decoded as UTF-8 (a BOM is dropped); a bad byte is InputError.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as f:
    ...     _ = f.write(b"name: x\\nblocks: \\xff\\n")
    >>> try:
    ...     read_text_input(f.name)
    ... except InputError as err:
    ...     print(err.line, err.message)
    2 not UTF-8 text: byte 0xff in column 9
    """
    data = read_input(path, field=field, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        before = data[:err.start]
        line = before.count(b"\n") + 1
        column = err.start - (before.rfind(b"\n") + 1) + 1
        raise InputError(f"not UTF-8 text: byte 0x{data[err.start]:02x} in column {column}",
                         file=os.fspath(path), line=line, field=field,
                         fix="save the file as UTF-8 text; is it the right file?") from None


# --------------------------------------------------------------------------- writing
def check_output(path, *, field=None, suffixes=None, what="a file", stdout_ok=True):
    """Raise InputError unless `path` can be written; call it before the work starts.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, or ``-`` for standard output.
    field : str, optional
        The option that names it (``--output``), for the error.
    suffixes : sequence of str, optional
        Extensions the writer can produce (``(".png", ".svg", ".pdf")``).
    what : str
        What is written, for the error (``"a figure"``).
    stdout_ok : bool
        Whether ``-`` (standard output) is allowed here.

    Raises
    ------
    InputError
        ``-`` where it is not allowed, an extension not in `suffixes`, a directory at
        `path`, a folder that does not exist, or one sgdsim cannot create files in (this is
        tried for real: a temporary file is created and removed).

    Examples
    --------
    >>> check_output("-")
    >>> try:
    ...     check_output("/no/such/folder/x.json", field="--output")
    ... except InputError as err:
    ...     print(err)
    /no/such/folder/x.json: --output: no such directory '/no/such/folder' (create it first, or write elsewhere)
    """
    file = os.fspath(path)
    if file == STDOUT:
        if not stdout_ok:
            raise InputError(f"'-' (standard output) cannot take {what}", field=field,
                             fix="give a path")
        return
    if file == "":
        raise InputError("empty path", field=field, fix="give a path")
    if suffixes is not None:
        suffix = os.path.splitext(file)[1].lower()
        if suffix not in suffixes:
            shown = repr(suffix) if suffix else "a file without extension"
            raise InputError(f"cannot write {what} as {shown}", file=file, field=field,
                             fix=f"name the file {', '.join(suffixes)}")
    if os.path.isdir(file):
        raise InputError("is a directory", file=file, field=field,
                         fix="give a file name, e.g. " + os.path.join(file, "out"))
    folder = os.path.dirname(os.path.abspath(file))
    shown = os.path.dirname(file) or "."
    if not os.path.exists(folder):
        raise InputError(f"no such directory '{shown}'", file=file, field=field,
                         fix="create it first, or write elsewhere")
    if not os.path.isdir(folder):
        raise InputError(f"'{shown}' is not a directory", file=file, field=field,
                         fix="write into a directory")
    try:
        fd, probe = _create_temporary(file)
    except OSError as err:
        raise _write_error(err, file, field) from None
    os.close(fd)
    os.unlink(probe)


def _create_temporary(path):
    """A new hidden file beside `path`, opened for writing: ``(fd, name)``."""
    folder, base = os.path.split(os.path.abspath(path))
    for _ in range(100):
        name = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", folder)


_WRITE_FIXES = {errno.ENOSPC: "free some space, or write elsewhere",
                errno.EDQUOT: "free some space, or write elsewhere",
                errno.EACCES: "check the directory's permissions, or write elsewhere",
                errno.EPERM: "check the directory's permissions, or write elsewhere",
                errno.EROFS: "write elsewhere: this file system is read-only",
                errno.ENOENT: "create the directory first, or write elsewhere",
                errno.ENOTDIR: "write into a directory"}


def _write_error(err, file, field):
    reason = err.strerror or str(err)
    return InputError(f"cannot write: {reason}", file=file, field=field,
                      fix=_WRITE_FIXES.get(err.errno, "check the path, or write elsewhere"))


def write_bytes_atomic(path, data, *, fsync=False, field=None):
    """Write `data` (bytes) to `path` atomically, or to standard output for ``-``.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes
    fsync : bool
        Flush the data to the disk before the rename (for files a crash must not lose).
    field : str, optional
        The option that named `path`, for the error.

    Raises
    ------
    InputError
        The write failed (no space, no permission, no such directory...); neither the
        target nor a temporary file is left behind, and an existing target is unchanged.
    """
    file = os.fspath(path)
    if file == STDOUT:
        stream = getattr(sys.stdout, "buffer", None)
        try:
            if stream is None:
                sys.stdout.write(data.decode("utf-8"))
            else:
                sys.stdout.flush()
                stream.write(data)
            sys.stdout.flush()
        except OSError as err:
            raise _write_error(err, "<stdout>", field) from None
        return
    tmp = None
    try:
        fd, tmp = _create_temporary(file)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, file)
        tmp = None
    except OSError as err:
        raise _write_error(err, file, field) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_text_atomic(path, text, *, fsync=False, field=None):
    """Write `text` (UTF-8, ``\\n`` line ends) to `path` atomically, or to stdout for ``-``.

    See :func:`write_bytes_atomic`.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> write_text_atomic(os.path.join(folder, "a.txt"), "hello\\n")
    >>> os.listdir(folder)
    ['a.txt']
    """
    write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync, field=field)


def write_figure(fig, path, *, dpi=150, field=None):
    """Render a matplotlib figure into memory, then write it with :func:`write_bytes_atomic`.

    The format is the extension of `path` (one of :data:`FIGURE_FORMATS`), PNG for ``-``;
    a figure that fails to render or to be written leaves no file, not even an empty one.
    """
    import io

    file = os.fspath(path)
    suffix = ".png" if file == STDOUT else os.path.splitext(file)[1].lower()
    if suffix not in FIGURE_FORMATS:
        raise InputError(f"cannot write a figure as {suffix or 'a file without extension'!r}",
                         file=file, field=field, fix=f"name the file {', '.join(FIGURE_FORMATS)}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix[1:], dpi=dpi)
    write_bytes_atomic(file, buffer.getvalue(), field=field)


def check_output_dir(path, *, resume=False, field="--output", what="a sweep"):
    """Raise InputError unless `path` can take a directory of output files.

    `path` may not exist yet (it is created with its parents), may be an empty directory,
    or, with `resume`, a directory holding the files of an earlier run to continue. ``-``
    is refused: a directory of files cannot go to standard output.

    Examples
    --------
    >>> try:
    ...     check_output_dir("-", what="a sweep")
    ... except InputError as err:
    ...     print(err)
    --output: a sweep writes a directory of files, not standard output (give a directory, e.g. -o out/run1)
    """
    file = os.fspath(path)
    fix = f"give a directory for {what}'s files"
    if file == STDOUT:
        raise InputError(f"{what} writes a directory of files, not standard output",
                         field=field, fix="give a directory, e.g. -o out/run1")
    if os.path.exists(file) and not os.path.isdir(file):
        raise InputError(f"'{file}' is a file", field=field, fix=fix)
    parent = os.path.dirname(os.path.abspath(file))
    while not os.path.exists(parent):          # the folders that will be created
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise InputError(f"'{parent}' is a file, not a directory", field=field, fix=fix)
    if os.path.isdir(file) and os.listdir(file) and not resume:
        raise InputError(f"'{file}' is not empty", field=field,
                         fix=f"add --resume to continue {what} in it, or give another "
                             "directory")


def append_whole(fd, text, file):
    """Append `text` (whole lines) to the open file `fd` with one write and an fsync.

    Raises
    ------
    InputError
        The write failed (a full disk): the file is cut back to its size before, so it
        holds only whole lines, and the message says that what finished is kept.
    """
    data = text.encode("utf-8")
    size = os.fstat(fd).st_size
    try:
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as err:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise InputError(f"cannot write: {err.strerror or err}", file=os.fspath(file),
                         fix=_WRITE_FIXES.get(err.errno, "check the path")
                         + "; what finished is kept: run the same command with --resume") \
            from None
