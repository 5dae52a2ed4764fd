"""Writing output files whole or not at all.

Every file sgdsim writes (results, baselines, traces, sweep summaries, copies of shipped
files) goes through :func:`write_text_atomic`: the text is written to a temporary file
beside the target and renamed over it, so a reader never sees half a file, and a failed
write leaves neither a partial target nor the temporary file behind.
"""

import os

__all__ = ["write_text_atomic", "write_bytes_atomic"]


def write_text_atomic(path, text, *, fsync=False):
    """Write `text` (UTF-8, ``\\n`` line ends) to `path` atomically.

    Parameters
    ----------
    path : str or os.PathLike
    text : str
    fsync : bool
        Flush the data to the disk before the rename (for files a crash must not lose).

    Raises
    ------
    OSError
        As ``open`` or ``os.replace`` raise it; the temporary file is removed first.
    """
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_bytes_atomic(path, data):
    """Write `data` (bytes) to `path` atomically, like :func:`write_text_atomic`."""
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
