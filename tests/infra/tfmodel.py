"""Reads infra/ Terraform with python-hcl2 and evaluates the plain expressions that name things.

Supported: literals, strings with ${} interpolation, var./local./each./count. references, resource
references (an `id` that the config does not set stands for the resource's `name`), module calls with
for_each, for expressions ([for ...] and {for ... => ...}, with if), conditionals, == != && || !,
and the functions in _FUNCTIONS. Values only known after apply (URLs, e-mails, project numbers)
evaluate to Unknown. Anything else raises Unsupported, so an expression this reader cannot follow
fails the parity test loudly instead of being skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2


class Unsupported(Exception):
    """An HCL construct this reader does not evaluate."""


@dataclass(frozen=True)
class Unknown:
    """A value Terraform only knows after apply; `owner` is the resource instance it belongs to."""

    what: str
    owner: Instance | None = None


_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def _is_block_list(raw: Any) -> bool:
    return isinstance(raw, list) and bool(raw) and all(isinstance(b, dict) and b.get("__is_block__") for b in raw)


# ---------------------------------------------------------------- tokens and syntax

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<op>==|!=|&&|\|\||<=|>=|=>|\.\.\.|[-+*/%!<>?:.,()\[\]{}=])|(?P<quote>\"))"
)


def _scan_string(text: str, start: int) -> tuple[list[str | tuple[str]], int]:
    """Split the string literal opening at text[start] into literal and ("expr",) parts; return its end."""
    parts: list[str | tuple[str]] = []
    buf: list[str] = []
    i = start + 1
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            buf.append(escapes.get(text[i + 1], text[i + 1]))
            i += 2
        elif text.startswith("$${", i):
            buf.append("${")
            i += 3
        elif text.startswith("${", i):
            if buf:
                parts.append("".join(buf))
                buf = []
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise Unsupported(f"unterminated interpolation in {text!r}")
                if text[j] == '"':
                    _, j = _scan_string(text, j)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            parts.append((text[i + 2 : j - 1],))
            i = j
        elif ch == '"':
            if buf or not parts:
                parts.append("".join(buf))
            return parts, i + 1
        else:
            buf.append(ch)
            i += 1
    raise Unsupported(f"unterminated string in {text!r}")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if not m:
            raise Unsupported(f"cannot read {text[i:]!r}")
        kind = m.lastgroup or ""
        if kind == "quote":
            parts, i = _scan_string(text, m.end() - 1)
            out.append(("str", parts))
            continue
        out.append((str(kind), m.group(kind)))
        i = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens of one expression; nodes are tuples."""

    _BINARY = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0

    def parse(self) -> tuple:
        node = self.expr()
        if self.pos != len(self.toks):
            raise Unsupported(f"cannot read {self.text!r} past token {self.pos}")
        return node

    def peek(self, value: str | None = None) -> bool:
        if self.pos >= len(self.toks):
            return False
        return value is None or (self.toks[self.pos][0] in ("op", "ident") and self.toks[self.pos][1] == value)

    def take(self, value: str | None = None) -> tuple[str, Any]:
        if value is not None and not self.peek(value):
            raise Unsupported(f"expected {value!r} in {self.text!r}")
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def expr(self) -> tuple:
        cond = self.binary(0)
        if self.peek("?"):
            self.take("?")
            yes = self.expr()
            self.take(":")
            return ("cond", cond, yes, self.expr())
        return cond

    def binary(self, level: int) -> tuple:
        if level == len(self._BINARY):
            return self.unary()
        node = self.binary(level + 1)
        while any(self.peek(op) for op in self._BINARY[level]):
            op = self.take()[1]
            node = ("binop", op, node, self.binary(level + 1))
        return node

    def unary(self) -> tuple:
        if self.peek("!") or self.peek("-"):
            op = self.take()[1]
            return ("unop", op, self.unary())
        return self.postfix()

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.peek("."):
                self.take(".")
                kind, name = self.take()
                if kind not in ("ident", "num"):
                    raise Unsupported(f"splat or odd attribute in {self.text!r}")
                node = ("index", node, ("lit", int(name))) if kind == "num" else ("attr", node, name)
            elif self.peek("["):
                self.take("[")
                if self.peek("*"):
                    raise Unsupported(f"splat in {self.text!r}")
                node = ("index", node, self.expr())
                self.take("]")
            else:
                return node

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "num":
            return ("lit", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "str":
            return ("tmpl", [p if isinstance(p, str) else _Parser(p[0]).parse() for p in value])
        if kind == "ident":
            if value in ("true", "false", "null"):
                return ("lit", {"true": True, "false": False, "null": None}[value])
            if self.peek("("):
                self.take("(")
                args = []
                while not self.peek(")"):
                    args.append(self.expr())
                    if self.peek("..."):
                        raise Unsupported(f"argument expansion in {self.text!r}")
                    if not self.peek(")"):
                        self.take(",")
                self.take(")")
                return ("call", value, args)
            return ("ref", value)
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        if value == "[":
            if self.peek("for"):
                return self.for_expr("]")
            items = []
            while not self.peek("]"):
                items.append(self.expr())
                if not self.peek("]"):
                    self.take(",")
            self.take("]")
            return ("list", items)
        if value == "{":
            if self.peek("for"):
                return self.for_expr("}")
            pairs = []
            while not self.peek("}"):
                key_kind, key = self.take()
                if key_kind == "str" and len(key) == 1 and isinstance(key[0], str):
                    key = key[0]
                elif key_kind != "ident":
                    raise Unsupported(f"computed object key in {self.text!r}")
                if not (self.peek("=") or self.peek(":")):
                    raise Unsupported(f"expected = in object of {self.text!r}")
                self.take()
                pairs.append((key, self.expr()))
                if self.peek(","):
                    self.take(",")
            self.take("}")
            return ("object", pairs)
        raise Unsupported(f"unexpected {value!r} in {self.text!r}")

    def for_expr(self, close: str) -> tuple:
        """`[for v in C : V if K]` or `{for k, v in C : KEY => V if K}`, after its opening bracket."""
        self.take("for")
        names = [self._name()]
        if self.peek(","):
            self.take(",")
            names.append(self._name())
        self.take("in")
        collection = self.expr()
        self.take(":")
        key = None
        if close == "}":
            key = self.expr()
            self.take("=>")
        value = self.expr()
        if self.peek("..."):
            raise Unsupported(f"grouping for expression in {self.text!r}")
        cond = None
        if self.peek("if"):
            self.take("if")
            cond = self.expr()
        self.take(close)
        key_name, value_name = (None, names[0]) if len(names) == 1 else (names[0], names[1])
        return ("for", key_name, value_name, collection, key, value, cond)

    def _name(self) -> str:
        kind, name = self.take()
        if kind != "ident":
            raise Unsupported(f"expected a name in {self.text!r}")
        return str(name)


# ---------------------------------------------------------------- values and scopes


@dataclass(frozen=True)
class _Namespace:
    kind: str  # var, local, each, count, path, data, module, resource type, data type
    ctx: Ctx
    label: str = ""


@dataclass(frozen=True)
class Instance:
    """One instance of a resource: its body, module scope and each/count binding."""

    module: Module
    type: str
    name: str
    key: Any = None
    each_value: Any = None

    @property
    def body(self) -> dict:
        return self.module.resources[(self.type, self.name)]

    @property
    def ctx(self) -> Ctx:
        each = None if self.key is None else {"key": self.key, "value": self.each_value}
        count = {"index": self.key} if "count" in self.body else None
        return Ctx(self.module, each, count)

    @property
    def address(self) -> str:
        key = "" if self.key is None else f"[{self.key!r}]"
        return f"{self.module.address}{self.type}.{self.name}{key}"

    def get(self, attr: str) -> Any:
        return _get_in_body(self.body, attr, self.ctx, self, self.address)


@dataclass(frozen=True)
class _Resource:
    module: Module
    type: str
    name: str


@dataclass(frozen=True)
class _Blocks:
    blocks: list
    ctx: Ctx
    owner: Instance
    address: str


def _get_in_body(body: dict, attr: str, ctx: Ctx, owner: Instance, address: str) -> Any:
    raw = body.get(attr, [])
    if attr not in body:
        if attr == "id" and "name" in body and body is owner.body:
            return owner.get("name")
        return Unknown(f"{address}.{attr}", owner)
    if _is_block_list(raw):
        return _Blocks(raw, ctx, owner, f"{address}.{attr}")
    return ctx.value(raw)


@dataclass(frozen=True)
class Ctx:
    """Where an expression is evaluated: a module instance plus each/count."""

    module: Module
    each: dict | None = None
    count: dict | None = None
    scope: dict | None = None  # the names a for expression binds

    def value(self, raw: Any) -> Any:
        """The value of a python-hcl2 node."""
        if isinstance(raw, dict):
            return {_unquote(k): self.value(v) for k, v in raw.items() if k not in _META_KEYS}
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if not isinstance(raw, str):
            return raw
        if raw.startswith('"'):
            return self.eval(_Parser(raw).parse())
        if raw.startswith("${") and raw.endswith("}"):
            return self.eval(_Parser(raw[2:-1]).parse())
        return raw  # a bare keyword, e.g. a type constraint

    def eval(self, node: tuple) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "tmpl":
            pieces = [p if isinstance(p, str) else self.eval(p) for p in node[1]]
            unknown = [p for p in pieces if isinstance(p, Unknown)]
            if unknown:
                return unknown[0]
            return "".join(p if isinstance(p, str) else _to_string(p) for p in pieces)
        if kind == "list":
            return [self.eval(n) for n in node[1]]
        if kind == "object":
            return {k: self.eval(v) for k, v in node[1]}
        if kind == "ref":
            if self.scope and node[1] in self.scope:
                return self.scope[node[1]]
            return _Namespace(node[1], self)
        if kind == "for":
            return self._for(node)
        if kind == "attr":
            return self._attr(self.eval(node[1]), node[2])
        if kind == "index":
            return self._index(self.eval(node[1]), self.eval(node[2]))
        if kind == "cond":
            cond = self.eval(node[1])
            if not isinstance(cond, bool):
                raise Unsupported(f"condition is not known: {cond!r}")
            return self.eval(node[2] if cond else node[3])
        if kind == "unop":
            val = self.eval(node[2])
            return (not val) if node[1] == "!" else -val
        if kind == "binop":
            return self._binop(node[1], node[2], node[3])
        if kind == "call":
            return self._call(node[1], node[2])
        raise Unsupported(f"node {kind}")

    def _for(self, node: tuple) -> Any:
        _, key_name, value_name, coll_node, key_node, value_node, cond_node = node
        collection = self.eval(coll_node)
        if isinstance(collection, Unknown):
            raise Unsupported(f"for expression over a value known after apply: {collection.what}")
        pairs = collection.items() if isinstance(collection, dict) else enumerate(collection)
        out_list: list = []
        out_map: dict = {}
        for k, v in pairs:
            names = {value_name: v} if key_name is None else {key_name: k, value_name: v}
            inner = dataclasses.replace(self, scope={**(self.scope or {}), **names})
            if cond_node is not None:
                cond = inner.eval(cond_node)
                if not isinstance(cond, bool):
                    raise Unsupported(f"for expression condition is not known: {cond!r}")
                if not cond:
                    continue
            if key_node is None:
                out_list.append(inner.eval(value_node))
            else:
                key = inner.eval(key_node)
                if key in out_map:
                    raise Unsupported(f"duplicate key {key!r} in a for expression (grouping is not read)")
                out_map[key] = inner.eval(value_node)
        return out_list if key_node is None else out_map

    def _binop(self, op: str, left_node: tuple, right_node: tuple) -> Any:
        left = self.eval(left_node)
        if op == "&&" and left is False:
            return False
        if op == "||" and left is True:
            return True
        right = self.eval(right_node)
        if isinstance(left, Unknown) or isinstance(right, Unknown):
            return Unknown(f"{left!r} {op} {right!r}")
        ops: dict[str, Callable[[Any, Any], Any]] = {
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "&&": lambda a, b: a and b,
            "||": lambda a, b: a or b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b,
            "%": lambda a, b: a % b,
        }
        return ops[op](left, right)

    def _call(self, name: str, arg_nodes: list[tuple]) -> Any:
        if name == "try":
            for node in arg_nodes:
                try:
                    return self.eval(node)
                except (KeyError, IndexError, TypeError):
                    continue
            raise KeyError("no argument of try() evaluated")
        if name not in _FUNCTIONS:
            raise Unsupported(f"function {name}()")
        args = [self.eval(n) for n in arg_nodes]
        if any(isinstance(a, Unknown) for a in args):
            return Unknown(f"{name}(...)")
        return _FUNCTIONS[name](*args)

    def _attr(self, base: Any, name: str) -> Any:
        if isinstance(base, Unknown):
            return Unknown(f"{base.what}.{name}", base.owner)
        if isinstance(base, _Namespace):
            mod = base.ctx.module
            if base.kind == "var":
                return mod.var(name)
            if base.kind == "local":
                return mod.local(name)
            if base.kind in ("each", "count"):
                binding = base.ctx.each if base.kind == "each" else base.ctx.count
                if binding is None:
                    raise Unsupported(f"{base.kind}.{name} outside for_each/count")
                return binding[name]
            if base.kind in ("path", "module", "terraform"):
                return Unknown(f"{base.kind}.{name}")
            if base.kind == "data":
                return _Namespace("data-type", base.ctx, name)
            if base.kind == "data-type":
                return Unknown(f"data.{base.label}.{name}")
            if (base.kind, name) not in mod.resources:
                raise KeyError(f"{mod.address}{base.kind}.{name} is not declared")
            resource = _Resource(mod, base.kind, name)
            body = mod.resources[(base.kind, name)]
            if "count" in body or "for_each" in body:
                return resource
            return Instance(mod, base.kind, name)
        if isinstance(base, _Resource):
            raise Unsupported(f"{base.type}.{base.name}.{name} without an index")
        if isinstance(base, Instance):
            return base.get(name)
        if isinstance(base, _BlockItem):
            return _get_in_body(base.body, name, base.ctx, base.owner, base.address)
        if isinstance(base, _Blocks):
            raise Unsupported(f"{base.address}.{name}: index the block first")
        if isinstance(base, dict):
            return base[name]
        raise TypeError(f"no attribute {name} on {base!r}")

    def _index(self, base: Any, key: Any) -> Any:
        if isinstance(base, Unknown):
            return Unknown(f"{base.what}[{key!r}]", base.owner)
        if isinstance(base, _Resource):
            for inst in base.module.instances(base.type, base.name):
                if inst.key == key:
                    return inst
            raise KeyError(f"{base.type}.{base.name}[{key!r}] does not exist")
        if isinstance(base, _Blocks):
            block = base.blocks[key]
            return _BlockItem(block, base.ctx, base.owner, f"{base.address}[{key}]")
        if isinstance(base, list | dict):
            return base[key]
        raise TypeError(f"cannot index {base!r}")


@dataclass(frozen=True)
class _BlockItem:
    body: dict
    ctx: Ctx
    owner: Instance
    address: str


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise TypeError(f"cannot turn {value!r} into a string")


def _dedup(items: list) -> list:
    return list(dict.fromkeys(items))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "replace": lambda s, old, new: s.replace(old, new),
    "merge": lambda *maps: {k: v for m in maps if m is not None for k, v in m.items()},
    "lookup": lambda m, key, *default: m[key] if key in m else default[0],
    "tostring": _to_string,
    "toset": _dedup,
    "tolist": list,
    "concat": lambda *lists: [x for lst in lists for x in lst],
    "coalesce": lambda *args: next(a for a in args if a is not None and a != ""),
    "lower": str.lower,
    "upper": str.upper,
    "length": len,
    "keys": lambda m: sorted(m),
}


@dataclass
class Module:
    """One module instance: the .tf files of a directory plus the arguments it was called with."""

    directory: Path
    args: dict[str, Callable[[], Any]] = field(default_factory=dict)
    address: str = ""

    def __post_init__(self) -> None:
        self.variables: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        self.module_calls: dict[str, dict] = {}
        self._local_values: dict[str, Any] = {}
        files = sorted(self.directory.glob("*.tf"))
        if not files:
            raise FileNotFoundError(f"no .tf files in {self.directory}")
        for path in files:
            with path.open() as fh:
                doc = hcl2.load(fh)
            for block in doc.get("variable", []):
                for name, body in block.items():
                    self.variables[_unquote(name)] = body
            for block in doc.get("locals", []):
                for name, raw in block.items():
                    if name not in _META_KEYS:
                        if name in self.locals:
                            raise ValueError(f"local.{name} declared twice in {self.directory}")
                        self.locals[name] = raw
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        self.resources[(_unquote(rtype), _unquote(rname))] = body
            for block in doc.get("module", []):
                for name, body in block.items():
                    self.module_calls[_unquote(name)] = body

    @property
    def ctx(self) -> Ctx:
        return Ctx(self)

    def var(self, name: str) -> Any:
        if name not in self.variables:
            raise KeyError(f"{self.address}var.{name} is not declared")
        decl = self.variables[name]
        if name in self.args:
            value = self.args[name]()
            nullable = self.ctx.value(decl.get("nullable", True))
            if value is not None or nullable or "default" not in decl:
                return value
        if "default" not in decl:
            return Unknown(f"{self.address}var.{name} (no default)")
        return self.ctx.value(decl["default"])

    def local(self, name: str) -> Any:
        if name not in self._local_values:
            if name not in self.locals:
                raise KeyError(f"{self.address}local.{name} is not declared")
            self._local_values[name] = self.ctx.value(self.locals[name])
        return self._local_values[name]

    def instances(self, rtype: str, rname: str) -> list[Instance]:
        body = self.resources[(rtype, rname)]
        if "count" in body:
            return [Instance(self, rtype, rname, i) for i in range(self.ctx.value(body["count"]))]
        if "for_each" in body:
            each = self.ctx.value(body["for_each"])
            pairs = each.items() if isinstance(each, dict) else ((k, k) for k in each)
            return [Instance(self, rtype, rname, k, v) for k, v in pairs]
        return [Instance(self, rtype, rname)]

    def all_instances(self, rtype: str) -> list[Instance]:
        return [i for (t, n) in self.resources if t == rtype for i in self.instances(t, n)]

    def children(self) -> Iterator[Module]:
        """The module instances this module calls (local sources only)."""
        for name, body in self.module_calls.items():
            source = self.ctx.value(body["source"])
            if not source.startswith("./") and not source.startswith("../"):
                raise Unsupported(f"module {name}: only local sources are read ({source})")
            directory = (self.directory / source).resolve()
            if "for_each" in body:
                each = self.ctx.value(body["for_each"])
                pairs = list(each.items() if isinstance(each, dict) else ((k, k) for k in each))
            elif "count" in body:
                raise Unsupported(f"module {name}: count")
            else:
                pairs = [(None, None)]
            for key, value in pairs:
                ctx = Ctx(self, None if key is None else {"key": key, "value": value})
                args: dict[str, Callable[[], Any]] = {
                    arg: functools.partial(ctx.value, raw)
                    for arg, raw in body.items()
                    if arg not in _META_KEYS | {"source", "for_each", "depends_on", "providers", "version"}
                }
                suffix = "" if key is None else f"[{key!r}]"
                yield Module(directory, args, f"{self.address}module.{name}{suffix}.")

    def walk(self) -> Iterator[Module]:
        """This module and every module below it."""
        yield self
        for child in self.children():
            yield from child.walk()
