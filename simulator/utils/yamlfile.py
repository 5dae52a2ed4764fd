"""YAML input files: load them with line numbers, check them against a JSON Schema.

Every file a user writes (topologies now, scenarios later) goes through two steps here,
and each step reports a problem as one :class:`~simulator.utils.errors.InputError` naming the
file, the 1-based line and the field (``links[3].bandwidth``, indices 0-based), with a fix:

1. :func:`load_yaml` parses the file and returns the data together with ``locate``, a
   function from a path inside the data (``("links", 3, "bandwidth")``) to the line where
   that key or list item is written. A syntax error, a missing file, an empty file or a
   key written twice in one mapping (PyYAML would silently keep the last) is an error.
   The common case (one document of plain lists, mappings and scalars, as every shipped
   and generated file is) is read in one pass over libyaml's C parser; anything else, and
   every error, goes to the reference, PyYAML's own parser under the same composer and
   checks, so both give the same data, lines and messages (tests/test_yaml_paths.py).
2. :func:`validate_schema` checks the data against a JSON Schema (draft 2020-12) and turns
   the most relevant violation into an InputError. An unknown key is reported on its own
   line with a did-you-mean among the keys allowed there; where the schema offers
   alternative forms (``oneOf``/``anyOf``) the error comes from the form the data
   evidently uses (the one declaring most of its keys).

Messages are driven by the schema, so a new file type needs a schema, not code:
``title`` names a value (``"a bandwidth"``), ``examples`` feed the fixes, ``errorMessage``
replaces the message of a failed range check (as VS Code's YAML and JSON editors do), and
``x-unit`` marks a string holding a quantity with a unit, so that a bare number is reported
as a missing unit.
"""

import difflib
import functools
import json
import math
import re

import jsonschema
import yaml
from jsonschema.exceptions import relevance

try:                                    # PyYAML built with libyaml (its wheels are)
    from yaml.cyaml import CParser
except ImportError:                     # pragma: no cover - a PyYAML built without it
    CParser = None

from . import quickschema
from .bulk import paused_gc
from .errors import InputError, UnitError
from .files import read_text_input
from .shipped import schema_path
from .units import MAX_NUMBER, NUMBER_PATTERN

__all__ = ["load_yaml", "parse_yaml", "validate_schema", "load_schema", "schema_text",
           "format_field", "did_you_mean", "Places", "MAX_DEPTH", "MAX_ALIAS_VALUES",
           "MAX_NUMBER"]


def format_field(path):
    """Return the dotted field name of a path inside the data, or None for the root.

    Examples
    --------
    >>> format_field(("links", 3, "between", 1))
    'links[3].between[1]'
    >>> format_field(()) is None
    True
    """
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or None


class Places:
    """Locates an InputError at a path inside one file: ``InputError(msg, **at(path))``.

    Parameters
    ----------
    file : str or None
    locate : callable or None
        ``locate(path_tuple) -> line``, as returned by :func:`load_yaml`.
    """

    def __init__(self, file, locate):
        self.file, self.locate = file, locate

    def __call__(self, path):
        """``{"file", "field", "line"}`` keyword arguments for :class:`InputError`."""
        return {"file": self.file, "field": format_field(path), "line": self.line(path)}

    def line(self, path):
        """The 1-based line of `path`, or None where there are no lines."""
        return self.locate(path) if self.locate is not None else None

    def text(self, path):
        """``"line 12"``, or the field name where there are no lines."""
        return f"line {self.locate(path)}" if self.locate is not None else format_field(path)

    def parse(self, parse, value, path):
        """``parse(value)``, with a UnitError located at `path`."""
        try:
            return parse(value)
        except UnitError as err:
            raise err.located(**self(path)) from err


def did_you_mean(word, choices):
    """Return ``"did you mean 'x'?"`` for the closest of `choices`, or None.

    Examples
    --------
    >>> did_you_mean("bandwith", ["bandwidth", "latency"])
    "did you mean 'bandwidth'?"
    >>> did_you_mean("h", ["H", "Hb"])
    "did you mean 'H'?"
    """
    choices = [str(c) for c in choices]
    same = [c for c in choices if c.lower() == str(word).lower()]    # 'h' for 'H': no close
    close = same or difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)  # spelling
    return f"did you mean '{close[0]}'?" if close else None


# --------------------------------------------------------------------------- loading
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings a file may have (sgdsim's own files use 6)."""
MAX_ALIAS_VALUES = 1_000_000
"""Values that YAML aliases may add to a file beyond those written (a "billion laughs"
file of 700 bytes would otherwise expand to a billion)."""


class _Refused(Exception):
    """A file refused while composing it: ``(message, mark, fix)``."""

    def __init__(self, message, mark, fix):
        super().__init__(message)
        self.message, self.mark, self.fix = message, mark, fix


class _Checks(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """PyYAML's safe composer and constructor with YAML 1.2's core schema and bounds on what
    a file may hold; the parser beneath is PyYAML's own (:class:`_Loader`) or libyaml's
    (:class:`_FastLoader`).

    * Plain scalars resolve as in YAML 1.2 (the core schema, which editors such as
      yaml-language-server use): ``1e-3`` and ``1e30`` are numbers, ``yes``/``on`` are
      strings, ``0777`` is 777, there are no sexagesimal numbers or timestamps. Numbers are
      written in ASCII digits (:data:`simulator.utils.units.NUMBER_PATTERN`).
    * Mapping keys are the text written (``1: x`` has the key ``"1"``, as in JSON); a list or
      mapping as a key is refused.
    * Nesting deeper than :data:`MAX_DEPTH` and an alias inside the collection it names (data
      that would be infinite) are refused while composing, before any recursion can run deep.
    """

    yaml_implicit_resolvers = {}

    def _start(self):
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._open = set()          # anchors of the collections being composed
        self.aliases = []           # (anchor, mark) of every alias, in order
        self.anchored = {}          # anchor -> the node it names

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(f"the alias *{event.anchor} is inside the collection "
                               f"&{event.anchor} names: the data would be infinite",
                               event.start_mark, f"refer to *{event.anchor} outside it, or "
                                                 "write the data out")
            self.aliases.append((event.anchor, event.start_mark))
            return super().compose_node(parent, index)
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        anchor = getattr(event, "anchor", None)
        self._depth += collection
        if self._depth > MAX_DEPTH:
            raise _Refused(f"lists and mappings nested more than {MAX_DEPTH} levels deep",
                           event.start_mark, "flatten the data; no sgdsim file needs this")
        if anchor is not None and collection:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= collection
            self._open.discard(anchor)
        if anchor is not None:
            self.anchored[anchor] = node
        return node

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or a mapping",
                    key_node.start_mark)
            mapping[_text(key_node, key_node.value)] = self.construct_object(value_node,
                                                                             deep=deep)
        return mapping

    def construct_yaml_str(self, node):
        return _text(node, self.construct_scalar(node))

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    def construct_yaml_float(self, node):
        text = self.construct_scalar(node).lower()
        if text.endswith(".inf"):
            return float("-inf") if text.startswith("-") else float("inf")
        if text == ".nan":
            return float("nan")
        return float(text)


for _tag, _pattern, _first in (   # YAML 1.2.2, 10.3 "Core Schema"
        ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
        ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
        ("float", NUMBER_PATTERN + r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
         "-+0123456789."),
        ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
        ("merge", r"<<", "<")):
    _Checks.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"),
                                  list(_first))
_Checks.add_constructor("tag:yaml.org,2002:str", _Checks.construct_yaml_str)
_Checks.add_constructor("tag:yaml.org,2002:int", _Checks.construct_yaml_int)
_Checks.add_constructor("tag:yaml.org,2002:float", _Checks.construct_yaml_float)


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _Checks):
    """:class:`_Checks` over PyYAML's pure-Python reader, scanner and parser: the reference,
    and the one whose messages every error quotes."""

    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        self._start()


class _FastLoader(_Checks, CParser or object):
    """:class:`_Checks`'s resolver and constructors over libyaml's C scanner and parser
    (PyYAML's ``CParser``), for :func:`_parse_common`; libyaml's own composer, which would
    bypass the checks, never runs."""

    def __init__(self, stream):
        CParser.__init__(self, stream)
        self._start()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(node, value):
    """`value` unless it holds a lone surrogate (a ``"\\ud800"`` escape): not Unicode text,
    it could be neither printed nor written."""
    found = _SURROGATE.search(value)
    if found:
        raise _Refused(f"a string holds the lone surrogate \\u{ord(found.group()):04x}, "
                       "which is not a character", node.start_mark,
                       "write the character itself, or one \\U escape for it")
    return value


def parse_yaml(text, *, file=None):
    """Parse YAML `text` as :func:`load_yaml` does; return ``(data, locate)``.

    Raises
    ------
    InputError
        A character YAML text cannot hold (a NUL byte: a binary file), a syntax error, an
        empty document, a key written twice, nesting deeper than :data:`MAX_DEPTH`, an alias
        inside what it names, or aliases adding more than :data:`MAX_ALIAS_VALUES` values.

    Examples
    --------
    >>> parse_yaml("lr: 1e-3\\nnesterov: yes\\n")[0]
    {'lr': 0.001, 'nesterov': 'yes'}
    >>> parse_yaml("a: &x\\n  b: *x\\n", file="x.yaml")
    Traceback (most recent call last):
    ...
    simulator.utils.errors.InputError: x.yaml:2: the alias *x is inside the collection &x names: the data would be infinite (refer to *x outside it, or write the data out)
    """
    if CParser is not None:
        try:
            return _parse_common(text)
        except Exception:                   # noqa: BLE001 - the reference decides, below
            pass
    return _parse(_Loader, text, file)


class _Unusual(Exception):
    """Raised by :func:`_parse_common` on anything outside the common case."""


_UNCOMMON = re.compile("[\t\\\\\ufeff\x85\u2028\u2029]")
"""Characters that libyaml and PyYAML's own parser read differently, or might: libyaml
takes a tab after a value as white space and a byte-order mark inside the text as one to
skip, where PyYAML refuses the tab and keeps the mark; escapes (a backslash) and the
Unicode line breaks are kept off too."""
_INDICATORS = re.compile("[?:#]")
"""Indicators inside a plain scalar (libyaml's style ``''``, PyYAML's None) in a flow
collection: libyaml takes ``{d?ataset: x}``, PyYAML refuses it."""
_BLOCK_STYLES = ("|", ">")
"""Block scalars: libyaml takes headers PyYAML refuses (``|#``)."""
_STARTS = {yaml.SequenceStartEvent: list, yaml.MappingStartEvent: dict}
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in
                         ("str", "int", "float", "bool", "null"))


def _parse_common(text):
    """:func:`parse_yaml` of the common case, in one pass over libyaml's events.

    The common case: one document of untagged lists, mappings and scalars with no anchor,
    alias or merge key (``<<``), nested at most :data:`MAX_DEPTH` deep, no key written
    twice and no list or mapping as a key. Each scalar is resolved and constructed by
    :class:`_Checks`'s own resolver and constructors, as the reference does after composing;
    instead of a tree of nodes, only the lines :func:`_locate` reads are kept, in a table
    that :func:`_locate_in_table` walks. Anything else, and every error, raises:
    :func:`parse_yaml` then hands the text to the reference (:class:`_Loader`), whose data
    and messages are the ones returned.
    """
    if _UNCOMMON.search(text):
        raise _Unusual("a character the two parsers read differently")
    loader = _FastLoader(text)
    try:
        constructors, resolve, get = loader.yaml_constructors, loader.resolve, loader.get_event
        scalar_event, scalar = yaml.ScalarEvent, yaml.ScalarNode(None, None, None, None)
        tags = {}                                   # (value, implicit) -> resolved tag
        get()                                       # stream start
        if type(get()) is not yaml.DocumentStartEvent:
            raise _Unusual("no document")
        # Each open list or mapping: [its data, its line table, the key awaiting a value,
        # that key's line, whether it is written [...] or {...}]. A line table holds, per item or key, the line where it is
        # written, or (line, table) where it is a list or mapping itself.
        stack, top, flow = [], None, 0              # flow: open [...] and {...}
        with paused_gc():                           # many objects, none garbage: utils/bulk.py
            while True:
                event = get()
                kind = type(event)
                if kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                    flow -= stack.pop()[4]
                    if not stack:
                        break
                    continue
                if kind is not scalar_event and kind not in _STARTS \
                        or event.anchor is not None or event.tag is not None:
                    raise _Unusual("an alias, anchor or tag")
                if kind is scalar_event and (event.style in _BLOCK_STYLES or not event.style
                                             and flow and _INDICATORS.search(event.value)):
                    raise _Unusual("a block scalar, or a plain one holding an indicator in "
                                   "[...] or {...}")
                line = event.start_mark.line + 1
                parent = stack[-1] if stack else None
                if parent is not None and parent[2] is None and type(parent[0]) is dict:
                    if kind is not scalar_event:
                        raise _Unusual("a list or mapping as a key")
                    scalar.value, scalar.start_mark = event.value, event.start_mark
                    key = _text(scalar, event.value)
                    if key in parent[0] or key == "<<":
                        raise _Unusual("a key written twice, or a merge key")
                    parent[2], parent[3] = key, line
                    continue
                if kind is scalar_event:
                    value = event.value
                    tag = tags.get((value, event.implicit))
                    if tag is None:
                        tag = tags[value, event.implicit] = resolve(yaml.ScalarNode, value,
                                                                    event.implicit)
                    if tag not in _SCALAR_TAGS:
                        raise _Unusual("a tag without a constructor")
                    scalar.tag, scalar.value, scalar.start_mark = tag, value, event.start_mark
                    data, table = constructors[tag](loader, scalar), None
                else:
                    data, table = _STARTS[kind](), _STARTS[kind]()
                if parent is None:
                    top = data, line, table
                elif type(parent[0]) is list:
                    parent[0].append(data)
                    parent[1].append(line if table is None else (line, table))
                else:
                    key = parent[2]
                    parent[0][key] = data
                    parent[1][key] = parent[3] if table is None else (parent[3], table)
                    parent[2] = None
                if table is None:
                    if parent is None:                  # the document is one scalar
                        break
                else:
                    stack.append([data, table, None, None, bool(event.flow_style)])
                    flow += bool(event.flow_style)
                    if len(stack) > MAX_DEPTH:
                        raise _Unusual("nested too deep")
        get()                                       # document end
        if type(get()) is not yaml.StreamEndEvent:
            raise _Unusual("another document")
    finally:
        loader.dispose()
    data, line, table = top
    return data, functools.partial(_locate_in_table, line, table)


def _locate_in_table(line, table, path):
    """:func:`_locate` over the line table of :func:`_parse_common`: the same lines."""
    for part in path:
        if type(table) is dict:
            entry = table.get(str(part))
        elif type(table) is list and isinstance(part, int) and 0 <= part < len(table):
            entry = table[part]
        else:
            return line
        if entry is None:
            return line
        line, table = (entry, None) if type(entry) is int else entry
    return line


def _parse(loader_class, text, file):
    """:func:`parse_yaml` through one loader class (:class:`_Loader`: the reference)."""
    loader = None
    try:
        loader = loader_class(text)
        with paused_gc():                            # many nodes, none garbage: utils/bulk.py
            root = loader.get_single_node()
        if root is None:
            raise InputError("the file is empty", file=file,
                             fix="write a YAML mapping, see the examples in docs/")
        _check_expansion(root, loader.aliases, loader.anchored, file)
        _reject_duplicate_keys(root, file)
        with paused_gc():
            data = loader.construct_document(root)
    except _Refused as err:
        raise InputError(err.message, file=file, line=err.mark.line + 1, fix=err.fix) from None
    except yaml.reader.ReaderError as err:
        raise _reader_error(err, text, file) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "cannot parse"
        context = ""
        if err.context and err.problem:
            context = f" {err.context}"
            if err.context_mark is not None and mark is not None \
                    and err.context_mark.line != mark.line:
                context += f" started on line {err.context_mark.line + 1}"
        raise InputError(f"YAML syntax error: {problem}{context}", file=file,
                         line=None if mark is None else mark.line + 1,
                         fix="check indentation, colons and brackets near this line") from None
    except yaml.YAMLError as err:
        raise InputError(f"YAML syntax error: {err}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, functools.partial(_locate, root)


def load_yaml(path):
    """Read a YAML file; return its data and a function giving the line of any path in it.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read (a regular file: :func:`simulator.utils.files.read_text_input`).
        It is named in every error as given.

    Returns
    -------
    data : object
        The parsed document: safe-load semantics with YAML 1.2's core schema
        (:func:`parse_yaml`).
    locate : callable
        ``locate(path_tuple) -> int``: the 1-based line of the key (in a mapping) or item
        (in a list) that `path_tuple` leads to, e.g. ``locate(("links", 3, "bandwidth"))``.
        A path that leads nowhere gives the line of its deepest existing part.

    Raises
    ------
    InputError
        If the file cannot be read, is not a regular file (a FIFO, a device), is too large,
        is not UTF-8 YAML text, is empty, writes one key twice in a mapping, nests too deep
        or expands too far through aliases (:func:`parse_yaml`).

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write("# a comment\\nname: x\\nlinks:\\n  - {bandwidth: 25 GB/s}\\n")
    >>> data, locate = load_yaml(f.name)
    >>> data["links"][0]["bandwidth"], locate(("links", 0, "bandwidth"))
    ('25 GB/s', 4)
    >>> os.unlink(f.name)
    """
    file = str(path)
    return parse_yaml(read_text_input(path), file=file)


_CHARACTER_NAMES = {0: "a NUL byte", 0x1B: "an escape character (ESC)", 0x7F: "DEL",
                    0xFEFF: "a byte-order mark"}


def _reader_error(err, text, file):
    """InputError for a character that YAML text cannot hold, at its line and column."""
    code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
    position = err.position if isinstance(err.position, int) else 0
    before = text[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    what = _CHARACTER_NAMES.get(code, f"the control character U+{code:04X}")
    return InputError(f"{what} in column {column}: YAML files are text", file=file, line=line,
                      fix="remove it, or escape it inside a double-quoted string; is this the "
                          "right file?")


def _children(node):
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return ()


def _check_expansion(root, aliases, anchored, file):
    """Refuse a composed tree whose aliases expand it too far (size or depth).

    Aliased nodes are shared in the composed graph, so sizes and depths are counted once
    per distinct node (an iterative walk: no recursion, whatever the depth).
    """
    if not aliases:
        return
    size, depth = {}, {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = (isinstance(node, yaml.CollectionNode)
                          + max((depth[id(c)] for c in children), default=0))
        elif key not in size:
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in size)
    written = len(size)
    worst = max(aliases, key=lambda a: size.get(id(anchored.get(a[0])), 0))
    if size[id(root)] - written > MAX_ALIAS_VALUES:
        raise InputError(f"aliases expand the data to {size[id(root)]:,} values, more than "
                         f"{MAX_ALIAS_VALUES:,} beyond the {written:,} written",
                         file=file, line=worst[1].line + 1,
                         fix="write the data out, or use fewer levels of aliases")
    if depth[id(root)] > MAX_DEPTH:
        raise InputError(f"aliases nest the data more than {MAX_DEPTH} levels deep",
                         file=file, line=worst[1].line + 1, fix="use fewer levels of aliases")


def _reject_duplicate_keys(root, file):
    """Raise InputError for a key written twice in one mapping of the composed tree."""
    seen_nodes, stack = set(), [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:              # an aliased node: checked once
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        raise InputError(
                            f"duplicate key '{key.value}', first at line {seen[key.value]}",
                            file=file, line=key.start_mark.line + 1,
                            field=format_field(path + (key.value,)),
                            fix="write each key once; YAML would silently keep only the last")
                    seen[key.value] = key.start_mark.line + 1
            stack.extend((value, path + (getattr(key, "value", "?"),))
                         for key, value in reversed(node.value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (index,))
                         for index, item in reversed(list(enumerate(node.value))))


def _locate(root, path):
    """Line (1-based) of the key or item at `path` in the composed tree `root`."""
    node, line = root, root.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# --------------------------------------------------------------------------- schemas
@functools.lru_cache(maxsize=None)
def _bundled(name):
    """The shipped schema `name` with every schema it refers to embedded (JSON text)."""
    return json.dumps(_bundle(name), indent=2, ensure_ascii=False) + "\n"


_BUNDLED = "sgdsim-{}"                     # $defs key of an embedded shipped schema


def _bundle(name):
    """Schema `name` as one document: a ``$ref`` to another shipped schema
    (``topology.schema.json``, ``scenario.schema.json#/$defs/x``) becomes a local reference
    to a copy of it under ``$defs`` (its own references rewritten to point inside the copy),
    so the result has only ``#/...`` references and stands alone in any folder."""
    root = json.loads(schema_path(name).read_text(encoding="utf-8"))
    embedded, pending = {}, [name]
    while pending:
        current = pending.pop()
        schema = root if current == name else embedded[current]
        prefix = "#" if current == name else f"#/$defs/{_BUNDLED.format(current)}"
        for node in _schema_nodes(schema):
            ref = node.get("$ref")
            if not isinstance(ref, str):
                continue
            target, _, fragment = ref.partition("#")
            if not target:
                node["$ref"] = prefix + fragment
                continue
            other = target.removesuffix(".schema.json")
            if other != name and other not in embedded:
                embedded[other] = json.loads(schema_path(other).read_text(encoding="utf-8"))
                embedded[other].pop("$schema", None)
                pending.append(other)
            node["$ref"] = ("#" if other == name else
                            f"#/$defs/{_BUNDLED.format(other)}") + fragment
    if embedded:
        root.setdefault("$defs", {}).update(
            {_BUNDLED.format(other): schema for other, schema in sorted(embedded.items())})
    return root


def _schema_nodes(schema):
    """Every mapping inside a schema document, without recursion."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_schema(name):
    """Return the JSON Schema shipped as ``schemas/{name}.schema.json``, standing alone.

    The shipped files refer to one another (a scenario's inline ``topology`` is a topology,
    a suite's inline ``scenario`` a scenario) by relative ``$ref``, which editors resolve
    beside the file; the schema returned here has those schemas embedded (see
    :func:`schema_text`).

    Examples
    --------
    >>> load_schema("topology")["$schema"]
    'https://json-schema.org/draft/2020-12/schema'
    >>> sorted(k for k in load_schema("regress")["$defs"] if k.startswith("sgdsim-"))
    ['sgdsim-scenario', 'sgdsim-topology']
    """
    return json.loads(_bundled(name))


def schema_text(name):
    """The JSON text of :func:`load_schema` (what ``sgdsim schema NAME`` prints)."""
    return _bundled(name)


def _finite_number(checker, instance):
    return isinstance(instance, (int, float)) and not isinstance(instance, bool) \
        and abs(instance) <= MAX_NUMBER           # False for NaN and infinity too


def _whole_number(checker, instance):
    return isinstance(instance, int) and not isinstance(instance, bool) \
        and abs(instance) <= MAX_NUMBER


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _finite_number, "integer": _whole_number}))
"""Draft 2020-12 where a number is finite and at most :data:`MAX_NUMBER` in magnitude, and
an integer is one written as such (``2.0`` at an integer place is normalised to ``2``
first, by :func:`validate_schema`)."""


def validate_schema(data, schema, *, file=None, locate=None):
    """Check `data` against a JSON Schema; raise the most relevant violation as InputError.

    Parameters
    ----------
    data : object
        Parsed file contents. A whole float (``2.0``) where the schema wants an integer is
        replaced by the integer in place, so that code reading the value gets what the
        schema promised (JSON Schema counts ``2.0`` as an integer, as editors do).
    schema : dict
        A draft 2020-12 JSON Schema (see the module docstring for the keywords used in
        messages). Numbers must also be finite and at most :data:`MAX_NUMBER` in magnitude:
        ``.nan``, ``.inf`` and ``1e30`` are refused wherever a number is expected.
    file : str, optional
        File name to put in the error.
    locate : callable, optional
        ``locate(path_tuple) -> line`` as returned by :func:`load_yaml`.

    Raises
    ------
    InputError
        The one violation most worth fixing first, with file, line, field and fix.

    Examples
    --------
    >>> schema = {"type": "object", "additionalProperties": False,
    ...           "properties": {"bandwidth": {"type": "string"}}}
    >>> try:
    ...     validate_schema({"bandwith": "1 GB/s"}, schema, file="x.yaml")
    ... except InputError as err:
    ...     print(err)
    x.yaml: bandwith: unknown key 'bandwith' (did you mean 'bandwidth'?)
    >>> data = {"n": 2.0}
    >>> validate_schema(data, {"properties": {"n": {"type": "integer"}}}); data
    {'n': 2}
    """
    if quickschema.valid(data, schema):              # the common case, fast (quickschema.py)
        return
    validator = _Validator(schema)
    errors = list(validator.iter_errors(data))
    if _whole_floats_to_ints(data, errors):
        errors = list(validator.iter_errors(data))
    error = _most_relevant(errors, schema)
    if error is None:
        return
    path, message, fix = _describe(error, schema)
    line = locate(path) if locate is not None else None
    raise InputError(message, file=file, line=line, field=format_field(path), fix=fix)


def _whole_floats_to_ints(data, errors):
    """Replace whole floats that failed ``type: integer`` by ints in `data`; True if any."""
    paths, stack = set(), list(errors)
    while stack:
        error = stack.pop()
        stack.extend(error.context or ())
        instance = error.instance
        if error.validator == "type" and isinstance(instance, float) \
                and "integer" in ([error.validator_value] if isinstance(error.validator_value, str)
                                  else error.validator_value) \
                and math.isfinite(instance) and instance.is_integer() \
                and abs(instance) <= MAX_NUMBER:
            paths.add(tuple(error.absolute_path))
    for path in paths:
        if not path:
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = int(parent[path[-1]])
    return bool(paths)


def _resolve(schema, root):
    """Follow local ``$ref`` chains (``#/$defs/...``) and return the target schema."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        target = root
        for part in schema["$ref"].lstrip("#").strip("/").split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        schema, seen = target, seen + 1
    return schema


def _properties(schema, root):
    """Declared properties of `schema`, including those of a ``$ref`` beside them."""
    properties = dict(_resolve(schema, root).get("properties", {}))
    properties.update(schema.get("properties", {}))
    return properties


def _most_relevant(errors, root):
    """Pick one error; inside oneOf/anyOf, descend into the branch the data resembles."""
    if not errors:
        return None
    candidates = errors
    best = max(errors, key=relevance)
    while best.context:
        candidates = best.context
        if best.validator in ("oneOf", "anyOf"):
            branch = _likely_branch(best, root)
            candidates = [e for e in best.context if e.relative_schema_path[0] == branch]
        best = max(candidates, key=relevance)
    if best.validator == "required":
        # A key that is missing beside an unknown one is most often a typo of it: say that.
        for error in candidates:
            if error.validator == "additionalProperties" and error.absolute_path == best.absolute_path:
                return error
    return best


def _likely_branch(error, root):
    """Index of the oneOf/anyOf branch that declares most of the instance's keys."""
    branches = error.validator_value
    failing = {e.relative_schema_path[0] for e in error.context}
    instance = error.instance

    def score(index):
        branch = _resolve(branches[index], root)
        fits = _type_fits(branch, instance, root)       # a string branch for a mapping: no
        if not isinstance(instance, dict):
            return (fits, 0, -sum(1 for e in error.context if e.relative_schema_path[0] == index))
        declared = _properties(branches[index], root)
        for sub in branch.get("oneOf", []) + branch.get("anyOf", []):   # nested forms
            declared = {**_properties(sub, root), **declared}
        required = branch.get("required", [])
        return (fits, sum(1 for key in instance if key in declared),
                -sum(1 for key in required if key not in instance))

    return max(sorted(failing), key=score)


def _type_fits(schema, instance, root):
    """1 unless `schema` (resolved) declares a ``type`` that `instance` is not, else 0."""
    types = schema.get("type")
    if types is None:
        branches = schema.get("oneOf", []) + schema.get("anyOf", [])
        return max((_type_fits(_resolve(b, root), instance, root) for b in branches), default=1)
    types = [types] if isinstance(types, str) else types
    kind = {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(instance))
    if kind is None and isinstance(instance, (int, float)):
        kind = "integer" if isinstance(instance, int) else "number"
    return int(kind in types or (kind == "integer" and "number" in types))


def _yaml_text(value):
    """`value` as one line of YAML, e.g. ``{type: V100, efficiency: 0.4}``."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False,
                          width=10**9).removesuffix("\n").removesuffix("\n...").strip()


def _example_text(value):
    return f"'{value}'" if isinstance(value, str) else _yaml_text(value)


def _examples(schema):
    examples = schema.get("examples") or []
    if not examples:
        return ""
    quoted = [_example_text(e) for e in examples[:3]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _json_type(value):
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "null": "nothing"}


def _describe(error, root):
    """Return (path, message, fix) for one jsonschema error."""
    path = tuple(error.absolute_path)
    schema = _resolve(error.schema, root) if isinstance(error.schema, dict) else {}
    instance = error.instance
    keyword = error.validator
    examples = _examples(schema)
    fix = f"write e.g. {examples}" if examples else None

    if keyword == "additionalProperties":
        declared = _properties(error.schema, root)
        key = next(k for k in instance if k not in declared)
        hint = did_you_mean(key, declared)
        allowed = ", ".join(declared)
        return (path + (key,), f"unknown key '{key}'",
                hint or (f"allowed here: {allowed}" if allowed else "remove it"))
    if keyword == "required":
        key = next(k for k in error.validator_value if k not in instance)
        declared = _properties(error.schema, root).get(key, {})
        examples = declared.get("examples") or _resolve(declared, root).get("examples")
        value = _yaml_text(examples[0]) if examples else "..."
        return path + (key,), "missing", f"add '{key}: {value}'"
    if keyword == "type":
        if "x-unit" in schema and isinstance(instance, (int, float)) \
                and not isinstance(instance, bool):
            return path, f"missing unit: {_number_text(instance)} is a bare number", \
                _unit_fix(schema)
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        if isinstance(instance, (int, float)) and not isinstance(instance, bool) \
                and ("number" in expected or "integer" in expected):
            if isinstance(instance, float) and not math.isfinite(instance):
                return path, f"must be a finite number, got {_number_text(instance)}", fix
            if abs(instance) > MAX_NUMBER:
                return path, (f"{_number_text(instance)} is too large: numbers in sgdsim files "
                              f"are at most 1e15"), fix
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        if "boolean" in expected and isinstance(instance, str) \
                and instance.lower() in ("yes", "no", "on", "off", "y", "n"):
            return path, f"expected true or false, got {instance!r}", \
                "write true or false: YAML 1.2 (what sgdsim and editors read) takes yes, no, " \
                "on and off as text"
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        got = _json_type(instance)
        if isinstance(instance, (str, int, float)) and not isinstance(instance, bool):
            got += f" {instance!r}"
        return path, f"expected {words}, got {got}", fix or f"write {words} here"
    if keyword == "pattern":
        if "x-unit" in schema:
            return path, f"{instance!r} is not {schema.get('title', 'valid')}", _unit_fix(schema)
        return path, f"{instance!r} is not {schema.get('title', 'valid here')}", fix
    if keyword == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return path, f"{instance!r} is not one of {choices}", \
            did_you_mean(instance, error.validator_value) or f"write one of {choices}"
    message = schema.get("errorMessage") or error.message
    if isinstance(instance, (str, int, float)) and not isinstance(instance, bool):
        message += f", got {instance!r}"
    return path, message, fix


def _number_text(value):
    """A number as YAML writes it: ``.nan``, ``.inf``, ``-.inf``, else its repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else (".inf" if value > 0 else "-.inf")
    return repr(value)


def _unit_fix(schema):
    return f"write {schema.get('title', 'a quantity')} with its unit, e.g. {_examples(schema)}"
