"""Plain values across the sandbox boundary: JSON with tags, so no object ever crosses.

Verdicts on model-written code are decided outside the process that ran it (see `code_exec.py`),
from values that crossed as data. `encode` accepts only plain types (None, bool, int, float, str,
list, tuple, dict, set, frozenset, and their subclasses as their base's data; any other object
fails), and `decode` rebuilds fresh Python values from JSON, so the trusted side only ever
compares its own objects: a result whose `__eq__` is always True arrives as data or not at all. Lists and JSON scalars are themselves; every JSON object is a tag:
{"tuple": [...]}, {"set": [...]}, {"frozenset": [...]}, {"dict": [[k, v], ...]} (keys of any plain
hashable type), {"float": "inf" | "-inf" | "nan"}, {"complex": [re, im]}, {"type": "int"} (the
builtin types named in TYPES, which tests pass as arguments), and, in call arguments only,
{"ref": name}: a value held by the solution's process (built there by trusted setup code, as
MBPP's `test_setup_code` trees, or a non-plain result it handed back as a reference).

This file is also sent as source text into sandboxed processes (they cannot import r1zero), so it
imports only the standard library and defines nothing that needs the package.
"""

import json
import math

MAX_DEPTH = 100  # deeper values fail to encode (a self-referencing list would otherwise recurse)
TYPES = {t.__name__: t for t in (int, float, complex, str, bool, list, tuple, dict, set, frozenset)}


def encode(value, depth=0):
    """A JSON-compatible form of a plain value; TypeError for anything else. A subclass of a plain
    type (Counter, OrderedDict, a namedtuple) is encoded as its base type's data: only data
    crosses, so whatever its methods do stays behind."""
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if value is None or type(value) is bool:
        return value
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        value = float.__float__(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, complex):
        return {"complex": [encode(complex.__complex__(value).real), encode(complex.__complex__(value).imag)]}
    if type(value) is type and TYPES.get(value.__name__) is value:
        return {"type": value.__name__}
    if isinstance(value, list):
        return [encode(item, depth + 1) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(item, depth + 1) for item in tuple.__iter__(value)]}
    if isinstance(value, (set, frozenset)):
        tag = "frozenset" if isinstance(value, frozenset) else "set"
        return {tag: [encode(item, depth + 1) for item in (frozenset.__iter__ if tag == "frozenset" else set.__iter__)(value)]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    raise TypeError(f"not a plain value: {type(value).__name__}")


def decode(data, refs=None):
    """The plain value that `encode` produced `data` from (ValueError when it is not such data).
    `refs` resolves {"ref": name} (a name -> value mapping); without it a ref is an error."""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(item, refs) for item in data]
    if type(data) is not dict or len(data) != 1:
        raise ValueError("not an encoded plain value")
    (tag, body), = data.items()
    if tag == "float" and body in ("inf", "-inf", "nan"):
        return float(body)
    if tag == "ref" and refs is not None and type(body) is str:
        return refs[body]
    if tag == "type" and body in TYPES:
        return TYPES[body]
    if type(body) is not list:
        raise ValueError("not an encoded plain value")
    if tag == "tuple":
        return tuple(decode(item, refs) for item in body)
    if tag == "complex" and len(body) == 2:
        return complex(*(decode(part) for part in body))
    if tag in ("set", "frozenset"):
        items = [decode(item, refs) for item in body]
        return set(items) if tag == "set" else frozenset(items)
    if tag == "dict" and all(type(pair) is list and len(pair) == 2 for pair in body):
        return {decode(k, refs): decode(v, refs) for k, v in body}
    raise ValueError("not an encoded plain value")


def dumps(value):
    """One line of JSON for a plain value."""
    return json.dumps(encode(value), allow_nan=False)


def loads(line):
    """The plain value on one line of JSON (ValueError, RecursionError or TypeError when malformed)."""
    return decode(json.loads(line))
