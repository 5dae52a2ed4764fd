"""A fast yes-or-unsure check of data against the shipped JSON Schemas.

jsonschema checks a 4,096-GPU topology (9,000 list items) in about 0.4 s, most of it in
its generic machinery. Almost every file is valid, and a valid file needs no message, so
:func:`valid` answers only "valid" quickly and otherwise leaves the verdict -- and the
message -- to jsonschema (:func:`simulator.utils.yamlfile.validate_schema`).

It implements the keywords the shipped schemas use, with the meaning
:func:`~simulator.utils.yamlfile.validate_schema` gives them (draft 2020-12, where a
number is finite and at most ``MAX_NUMBER`` in magnitude and an integer is written as one;
a whole float at an integer place is left to it, to normalise): ``type``, ``enum`` (of
strings), ``properties``, ``additionalProperties`` (false or a schema), ``required``,
``minProperties``, ``items``, ``minItems``, ``maxItems``, ``minLength``, ``pattern``
(searched, not matched), ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``oneOf``, ``anyOf`` and local ``$ref`` (beside other keywords, all
apply). Annotations (``title``, ``description``, ``examples``, ``default``,
``errorMessage``, ``patternErrorMessage``, ``x-unit``, ``$schema``, ``$defs``) change
nothing. A schema with any other keyword makes
:func:`valid` return None: unsure. Checks of hashable values are remembered, so a value
repeated thousands of times (``block0``, ``25 GB/s``) is checked once.

The tests hold it to jsonschema's verdict on every shipped file and many broken copies.
"""

import math
import re

from .units import MAX_NUMBER

__all__ = ["valid"]

_ANNOTATIONS = {"title", "description", "examples", "default", "errorMessage",
                "patternErrorMessage", "x-unit", "$schema", "$defs", "$comment"}
_KNOWN = {"type", "enum", "properties", "additionalProperties", "required", "minProperties",
          "items", "minItems", "maxItems", "minLength", "pattern", "minimum", "maximum",
          "exclusiveMinimum", "exclusiveMaximum", "oneOf", "anyOf", "$ref"} | _ANNOTATIONS


class _Unsure(Exception):
    """The schema uses something this module does not implement."""


def valid(data, schema):
    """True if `data` is valid against `schema`; None if it may not be (ask jsonschema).

    Parameters
    ----------
    data : object
        Parsed YAML or JSON.
    schema : dict
        A draft 2020-12 JSON Schema with local ``$ref`` only.

    Returns
    -------
    True or None

    Examples
    --------
    >>> schema = {"type": "object", "additionalProperties": False,
    ...           "properties": {"bandwidth": {"type": "string", "pattern": "B/s$"}}}
    >>> valid({"bandwidth": "25 GB/s"}, schema)
    True
    >>> valid({"bandwith": "25 GB/s"}, schema) is None
    True
    """
    try:
        return True if _Checker(schema).check(data, schema) else None
    except _Unsure:
        return None


class _Checker:
    def __init__(self, root):
        self.root = root
        self.memo = {}          # (id(schema), type(value), value) -> bool
        self.compiled = {}      # id(schema) -> _Node

    def check(self, value, schema):
        if schema is True:
            return True
        if schema is False:
            return False
        hashable = value is None or isinstance(value, (str, int, float, bool))
        if hashable:
            key = (id(schema), type(value), value)
            found = self.memo.get(key)
            if found is not None:
                return found
        node = self.compiled.get(id(schema))
        if node is None:
            node = self.compiled[id(schema)] = _Node(schema, self)
        result = node.check(value, self)
        if hashable:
            self.memo[key] = result
        return result

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise _Unsure
        target = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise _Unsure
            target = target[part]
        return target


class _Node:
    """One schema object, its keywords read once."""

    def __init__(self, schema, checker):
        if not isinstance(schema, dict) or not _KNOWN.issuperset(schema):
            raise _Unsure
        self.schema = schema                       # keeps id(schema) alive and unique
        self.ref = checker.resolve(schema["$ref"]) if "$ref" in schema else None
        types = schema.get("type")
        self.types = None if types is None else (types if isinstance(types, list) else [types])
        for name in self.types or ():
            if name not in ("object", "array", "string", "boolean", "null", "number", "integer"):
                raise _Unsure
        self.enum = schema.get("enum")
        if self.enum is not None and not all(isinstance(e, str) for e in self.enum):
            raise _Unsure
        self.one_of = schema.get("oneOf")
        self.any_of = schema.get("anyOf")
        self.min_items, self.max_items = schema.get("minItems", 0), schema.get("maxItems", math.inf)
        self.items = schema.get("items", True)
        self.min_length = schema.get("minLength", 0)
        self.pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
        self.bounds = [(name, schema[name]) for name in
                       ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if name in schema]
        self.min_properties = schema.get("minProperties", 0)
        self.required = schema.get("required", ())
        self.properties = schema.get("properties", {})
        self.extra = schema.get("additionalProperties", True)

    def check(self, value, checker):
        if self.ref is not None and not checker.check(value, self.ref):
            return False
        if self.types is not None and not any(_is_type(value, t) for t in self.types):
            return False
        if self.enum is not None and not (isinstance(value, str) and value in self.enum):
            return False
        if self.one_of is not None and sum(checker.check(value, s) for s in self.one_of) != 1:
            return False
        if self.any_of is not None and not any(checker.check(value, s) for s in self.any_of):
            return False
        if isinstance(value, dict):
            if len(value) < self.min_properties:
                return False
            if any(key not in value for key in self.required):
                return False
            properties, extra = self.properties, self.extra
            for key, item in value.items():
                sub = properties.get(key, extra) if isinstance(key, str) else extra
                if not checker.check(item, sub):
                    return False
            return True
        if isinstance(value, list):
            if len(value) < self.min_items or len(value) > self.max_items:
                return False
            items = self.items
            return all(checker.check(item, items) for item in value)
        if isinstance(value, str):
            if len(value) < self.min_length:
                return False
            return self.pattern is None or self.pattern.search(value) is not None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for name, bound in self.bounds:            # as jsonschema words them (NaN passes)
                if ((name == "minimum" and value < bound) or (name == "maximum" and value > bound)
                        or (name == "exclusiveMinimum" and value <= bound)
                        or (name == "exclusiveMaximum" and value >= bound)):
                    return False
            return True
        return True


def _is_type(value, name):
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float)) and abs(value) <= MAX_NUMBER
    if name == "integer":
        if isinstance(value, float) and value.is_integer():
            raise _Unsure                      # validate_schema turns 2.0 into 2 first
        return isinstance(value, int) and abs(value) <= MAX_NUMBER
    raise _Unsure
