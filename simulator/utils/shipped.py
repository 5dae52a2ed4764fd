"""Files that ship with sgdsim: topologies, scenarios and JSON Schemas, and names for them.

Where they are
--------------
In a checkout they are the top-level folders ``topologies/``, ``scenarios/`` and
``schemas/``. A wheel carries the same files inside the package, as
``simulator/topologies/``, ``simulator/scenarios/`` and ``simulator/schemas/`` (setup.cfg
maps each folder there). Both layouts keep the three folders side by side, so the
references between the files (a scenario's ``topology: seed_8x2``, a ``$schema`` comment
``../schemas/topology.schema.json``) resolve in the checkout and once installed alike.

Names
-----
A shipped file is named by its file name without extension (``seed_8x2``,
``large_batch``). Wherever sgdsim takes a file it also takes such a name, and a file
path always wins: :func:`resolve` returns an existing file as it is, and only a value that
is no existing file is looked up among the shipped ones.
"""

import os
from pathlib import Path

from .errors import InputError
from .files import check_output, is_stdout, write_text_atomic

__all__ = ["KINDS", "shipped_dir", "shipped_files", "catalog", "resolve", "copy_shipped", "is_installed_copy", "is_shipped",
           "schema_path", "schema_reference"]

KINDS = ("topologies", "scenarios", "schemas")

_PACKAGE = Path(__file__).resolve().parent.parent          # simulator/
_EXTENSIONS = {"topologies": (".yaml", ".yml", ".graphml", ".gml", ".json"),
               "scenarios": (".yaml", ".yml"), "schemas": (".json",)}
_WHAT = {"topologies": "topology", "scenarios": "scenario", "schemas": "schema"}


def shipped_dir(kind):
    """The folder holding the shipped files of `kind` (one of :data:`KINDS`).

    Examples
    --------
    >>> shipped_dir("topologies").name
    'topologies'
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    installed = _PACKAGE / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def is_installed_copy():
    """True when the shipped files are the installed package's copy (not a checkout's)."""
    return (_PACKAGE / "scenarios").is_dir()


def shipped_files(kind):
    """``{name: path}`` of the shipped files of `kind`, in name order.

    Examples
    --------
    >>> "seed_8x2" in shipped_files("topologies")
    True
    """
    folder = shipped_dir(kind)
    files = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        stem, ext = os.path.splitext(path.name)
        if kind == "schemas":
            stem, ext = path.name.removesuffix(".schema.json"), ".json"
        if path.is_file() and ext in _EXTENSIONS[kind]:
            files.setdefault(stem, path)
    return files


def catalog(kind):
    """What each shipped file of `kind` is: ``{name: (what, description)}``.

    `what` is ``"topology"`` for a topology; for a scenario file ``"scenario"``, ``"sweep"``
    (it has a ``sweep`` section) or ``"suite"`` (a regression suite); `description` is the
    file's ``description`` key, or "" without one.

    Examples
    --------
    >>> catalog("scenarios")["default"][0]
    'scenario'
    """
    from .yamlfile import parse_yaml

    entries = {}
    for name, path in shipped_files(kind).items():
        data = parse_yaml(path.read_text(encoding="utf-8"), file=str(path))[0] \
            if path.suffix in (".yaml", ".yml") else {}
        data = data if isinstance(data, dict) else {}
        what = _WHAT[kind]
        if kind == "scenarios":
            what = "suite" if "scenarios" in data else "sweep" if "sweep" in data else "scenario"
        entries[name] = (what, str(data.get("description", "")))
    return entries


def resolve(kind, value, base_dir=None, *, relative_to="the current directory", field=None,
            file=None, line=None, missing_ok=False):
    """The file `value` names: an existing file as it is, else a shipped file.

    Parameters
    ----------
    kind : {"topologies", "scenarios"}
    value : str or os.PathLike
        A path (relative to `base_dir`), or the name of a shipped file (``seed_8x2``).
    base_dir : str, optional
        Directory relative paths are taken from (default: the current directory).
    relative_to : str
        How the error names `base_dir` ("the scenario file's directory").
    field, file, line
        Where `value` was written, for the error.
    missing_ok : bool
        Return a path that names no file (and is not a bare name) instead of raising, for a
        loader that reports missing files itself.

    Returns
    -------
    str
        `value` (joined to `base_dir` and normalised, if given) when that file exists, else
        the shipped file's path.
        A caller tells the two apart by comparing with the joined path.

    Raises
    ------
    InputError
        `value` is neither an existing file nor a shipped name. For a bare name the fix
        lists the shipped names (with a did-you-mean); for a path it says what the path is
        relative to.

    Examples
    --------
    >>> resolve("topologies", "seed_8x2").endswith("seed_8x2.yaml")
    True
    """
    text = os.fspath(value)
    joined = text if base_dir is None else os.path.normpath(os.path.join(base_dir, text))
    if os.path.exists(joined) and not os.path.isdir(joined):
        return joined
    names = shipped_files(kind)
    name = text.removesuffix(".yaml").removesuffix(".yml")
    bare = os.sep not in text and "/" not in text
    if bare and name in names:
        return str(_shown(names[name]))
    what = _WHAT[kind]
    if bare and not os.path.splitext(text)[1]:
        from .yamlfile import did_you_mean

        hint = did_you_mean(name, names)
        raise InputError(f"no file '{text}' and no shipped {what} of that name",
                         file=file, line=line, field=field,
                         fix=(hint + " " if hint else "") + "give a file path or one of: "
                         + ", ".join(names) + f" (sgdsim {what} list)")
    if missing_ok:
        return joined
    looked = f" (looked for {joined})" if joined != text else ""
    raise InputError(f"no such {what} file '{text}'{looked}", file=file, line=line,
                     field=field, fix=f"check the path; it is relative to {relative_to}")


_SCHEMA_COMMENT = "# yaml-language-server: $schema="


def copy_shipped(kind, name, dest=None, *, overwrite=False):
    """Copy a shipped file out to edit; return the paths written.

    Parameters
    ----------
    kind : {"topologies", "scenarios"}
    name : str
        A shipped name (``large_batch``).
    dest : str or os.PathLike, optional
        A file to write, an existing directory to write ``NAME.yaml`` into, or ``-`` to
        print the file (not for a suite, which comes with its baseline); default: the
        current directory.
    overwrite : bool
        Replace an existing file instead of refusing to.

    Returns
    -------
    list of str
        The file written; for a regression suite also its baseline, copied beside it.

    Notes
    -----
    The copy is the shipped file byte for byte except its ``$schema`` comment, which is
    rewritten to reach the shipped schema from where the copy is. Shipped scenarios name
    their topologies by shipped name, so a copied scenario runs from anywhere.

    Raises
    ------
    InputError
        An unknown name, a destination that exists (without `overwrite`), a folder that
        does not exist or cannot be written.
    """
    from .yamlfile import did_you_mean

    names = shipped_files(kind)
    if name not in names:
        hint = did_you_mean(name, names)
        raise InputError(f"no shipped {_WHAT[kind]} '{name}'", field="NAME",
                         fix=(hint + " " if hint else "") + "one of: " + ", ".join(names))
    source = names[name]
    target = os.fspath(dest) if dest is not None else "."
    if is_stdout(target):
        if kind == "scenarios" and catalog(kind)[name][0] == "suite":
            raise InputError(f"'{name}' is a suite and comes with its baseline: two files",
                             field="DEST", fix="give a directory to copy both into")
        write_text_atomic(target, source.read_text(encoding="utf-8"))
        return [target]
    if os.path.isdir(target):
        target = os.path.join(target, source.name)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InputError(f"no such directory '{os.path.dirname(target)}'", field="DEST",
                         fix="create it first, or name an existing directory")
    copies = [(source, target)]
    text = source.read_text(encoding="utf-8")
    if kind == "scenarios" and catalog(kind)[name][0] == "suite":
        from .yamlfile import parse_yaml

        baseline = parse_yaml(text)[0].get("baseline", f"{name}_baseline.json")
        if (source.parent / baseline).is_file():
            copies.append((source.parent / baseline,
                           os.path.join(os.path.dirname(target), baseline)))
    for _, path in copies:
        if os.path.exists(path) and not overwrite:
            raise InputError(f"'{path}' exists", field="DEST",
                             fix="choose another destination, or pass --force to replace it")
        check_output(path, field="DEST")
    written = []
    for origin, path in copies:
        body = origin.read_text(encoding="utf-8")
        first, _, rest = body.partition("\n")
        if first.startswith(_SCHEMA_COMMENT):
            schema = first.removeprefix(_SCHEMA_COMMENT).rsplit("/", 1)[-1].removesuffix(
                ".schema.json")
            body = _SCHEMA_COMMENT + schema_reference(schema, path) + "\n" + rest
        write_text_atomic(path, body, field="DEST")
        written.append(path)
    return written


def _shown(path):
    """`path` relative to the current directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def is_shipped(path):
    """True if `path` is one of the shipped files (the checkout's or the installed copy)."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    return any(folder == os.path.realpath(shipped_dir(kind)) for kind in KINDS)


def schema_path(name):
    """Path of the shipped JSON Schema ``{name}.schema.json`` (topology, scenario, regress)."""
    return shipped_dir("schemas") / f"{name}.schema.json"


def schema_reference(name, file):
    """The shipped schema's path relative to the folder of `file` (absolute if there is none).

    This is what sgdsim writes into the ``# yaml-language-server: $schema=...`` comment of a
    file it writes, so that an editor finds the schema from where the file is.
    """
    schema = str(schema_path(name))
    try:
        ref = os.path.relpath(schema, os.path.dirname(os.path.abspath(file)))
    except ValueError:                    # another drive on Windows
        ref = schema
    return ref.replace(os.sep, "/")
