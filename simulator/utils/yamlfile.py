"""YAML input files: load them with line numbers, check them against a JSON Schema.

Every file a user writes (topologies now, scenarios later) goes through two steps here,
and each step reports a problem as one :class:`~simulator.utils.errors.InputError` naming the
file, the 1-based line and the field (``links[3].bandwidth``, indices 0-based), with a fix:

1. :func:`load_yaml` parses the file and returns the data together with ``locate``, a
   function from a path inside the data (``("links", 3, "bandwidth")``) to the line where
   that key or list item is written. A syntax error, a missing file, an empty file or a
   key written twice in one mapping (PyYAML would silently keep the last) is an error.
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

import jsonschema
import yaml
from jsonschema.exceptions import relevance

from .errors import InputError, UnitError
from .shipped import schema_path

__all__ = ["load_yaml", "validate_schema", "load_schema", "format_field", "did_you_mean", "Places"]


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
def load_yaml(path):
    """Read a YAML file; return its data and a function giving the line of any path in it.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read. It is named in every error as given.

    Returns
    -------
    data : object
        The parsed document (``yaml.safe_load`` semantics).
    locate : callable
        ``locate(path_tuple) -> int``: the 1-based line of the key (in a mapping) or item
        (in a list) that `path_tuple` leads to, e.g. ``locate(("links", 3, "bandwidth"))``.
        A path that leads nowhere gives the line of its deepest existing part.

    Raises
    ------
    InputError
        If the file cannot be read, is not valid YAML, is empty, or writes one key twice
        in a mapping.

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
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError as err:
        raise InputError("no such file", file=file,
                         fix="check the path") from err
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the file: {err}", file=file) from err

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise InputError("the file is empty", file=file,
                             fix="write a YAML mapping, see the examples in docs/")
        _reject_duplicate_keys(root, (), file)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "cannot parse"
        context = ""
        if err.context and err.problem:
            context = f" {err.context}"
            if err.context_mark is not None and err.context_mark.line != mark.line:
                context += f" started on line {err.context_mark.line + 1}"
        raise InputError(f"YAML syntax error: {problem}{context}", file=file,
                         line=None if mark is None else mark.line + 1,
                         fix="check indentation, colons and brackets near this line") from err
    except yaml.YAMLError as err:
        raise InputError(f"YAML syntax error: {err}", file=file) from err
    finally:
        loader.dispose()
    return data, functools.partial(_locate, root)


def _reject_duplicate_keys(node, path, file):
    """Raise InputError for a key written twice in one mapping of the composed tree."""
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
            _reject_duplicate_keys(value, path + (key.value,), file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicate_keys(item, path + (index,), file)


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
def _schema_text(name):
    return schema_path(name).read_text(encoding="utf-8")


def load_schema(name):
    """Return the JSON Schema shipped as ``schemas/{name}.schema.json``.

    Examples
    --------
    >>> load_schema("topology")["$schema"]
    'https://json-schema.org/draft/2020-12/schema'
    """
    return json.loads(_schema_text(name))


def validate_schema(data, schema, *, file=None, locate=None):
    """Check `data` against a JSON Schema; raise the most relevant violation as InputError.

    Parameters
    ----------
    data : object
        Parsed file contents.
    schema : dict
        A draft 2020-12 JSON Schema (see the module docstring for the keywords used in
        messages).
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
    """
    validator = jsonschema.Draft202012Validator(schema)
    error = _most_relevant(list(validator.iter_errors(data)), schema)
    if error is None:
        return
    path, message, fix = _describe(error, schema)
    line = locate(path) if locate is not None else None
    raise InputError(message, file=file, line=line, field=format_field(path), fix=fix)


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
        if not isinstance(instance, dict):
            return (0, -sum(1 for e in error.context if e.relative_schema_path[0] == index))
        branch = branches[index]
        declared = _properties(branch, root)
        required = _resolve(branch, root).get("required", [])
        return (sum(1 for key in instance if key in declared),
                -sum(1 for key in required if key not in instance))

    return max(sorted(failing), key=score)


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
            return path, f"missing unit: {instance!r} is a bare number", _unit_fix(schema)
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
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


def _unit_fix(schema):
    return f"write {schema.get('title', 'a quantity')} with its unit, e.g. {_examples(schema)}"
