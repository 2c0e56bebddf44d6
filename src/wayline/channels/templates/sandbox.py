"""The Jinja2 sandbox templates render in, and the static check of what they refer to.

Marketers edit templates; customers fill the data in them (a first name, a product title). So:

- Rendering happens in a sandbox (:class:`ContextSandbox`, built on Jinja's immutable sandbox)
  that goes further: a dotted name reads **only keys of the mappings in the given context**
  (``customer.first_name`` is ``customer["first_name"]``), never a Python attribute. Strings,
  numbers and lists expose nothing; names starting with ``_`` are refused; only Wayline's own
  helpers (marked with :func:`helper`), the template's own macros, ``range``, ``namespace`` and
  Jinja's ``loop`` can be called. The usual escapes (``''.__class__.__mro__``,
  ``cycler.__init__.__globals__``, ``self._TemplateReference__context``) find nothing to reach.
- Data is data: a first name of ``{{ 7*7 }}`` is printed as written, never evaluated, and HTML
  output is auto-escaped.
- Undefined is strict, and before any send :func:`check_references` walks the template's syntax
  tree against the declared context (:mod:`wayline.channels.templates.context`): a misspelt or
  undeclared variable is an error at validation time, with its line, not an empty string in a
  customer's inbox.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Namespace

F = TypeVar("F", bound=Callable[..., Any])


def helper(fn: F) -> F:
    """Mark ``fn`` as callable from templates."""
    fn.wayline_helper = True  # type: ignore[attr-defined]
    return fn


_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "BRL": "R$", "INR": "₹", "AUD": "A$", "CAD": "C$"}


def money(amount: Any, currency: Any = None) -> str:
    """``€49.00``: an amount with its currency's symbol (or code), two decimals."""
    if amount is None or isinstance(amount, Undefined):
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(amount)
    code = str(currency).upper() if currency else ""
    number = f"{value:,.2f}"
    if code in _SYMBOLS:
        return f"{_SYMBOLS[code]}{number}"
    return f"{number} {code}".strip()


def _finalize(value: Any) -> Any:
    # A declared but empty field (no last name on file) prints as nothing, not "None".
    return "" if value is None else value


#: Caps on what one expression can build: ``'x' * 10**9`` would otherwise take the memory.
MAX_REPEAT = 10_000
MAX_EXPONENT = 64


class ContextSandbox(ImmutableSandboxedEnvironment):
    """A sandbox where templates see only the keys of the context they are given."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent over {MAX_EXPONENT} in a template")
            return left**right
        sized = (str, list, tuple)
        count = right if isinstance(left, sized) else left if isinstance(right, sized) else None
        if isinstance(count, int) and count > MAX_REPEAT:
            raise SecurityError(f"repeating a value over {MAX_REPEAT} times in a template")
        return left * right

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            autoescape=html,
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        # Jinja's other globals (cycler, joiner, lipsum, dict) are not needed and widen the
        # surface; the helpers come in through the context.
        self.globals = {"range": safe_range, "namespace": Namespace}
        self.filters["money"] = money
        # ``attr`` reads Python attributes, the one thing templates must not do; ``center``,
        # ``indent`` and ``format`` can pad a value to any width (``'%999999999s'|format``).
        for name in ("attr", "center", "indent", "format"):
            del self.filters[name]

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            return self.unsafe_undefined(obj, attribute)
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, (LoopContext, Namespace)):
            return super().getattr(obj, attribute)
        if isinstance(obj, Undefined):
            return self.undefined(obj=obj, name=attribute)
        return self.unsafe_undefined(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, Sequence) and isinstance(argument, (int, slice)):
            try:
                return obj[argument]
            except IndexError:
                return self.undefined(obj=obj, name=str(argument))
        return self.unsafe_undefined(obj, str(argument))

    def is_safe_callable(self, obj: Any) -> bool:
        if getattr(obj, "wayline_helper", False) or obj is safe_range or obj is Namespace:
            return True
        if isinstance(obj, Macro):  # the template's own macros
            return True
        return isinstance(obj, types.MethodType) and isinstance(obj.__self__, LoopContext)


# --- static check ----------------------------------------------------------------------------


class Any_:
    """A declared value of free shape (``customer.properties``): anything below it is allowed."""

    def __repr__(self) -> str:
        return "ANY"


ANY = Any_()

#: A declared context: mapping → its keys, [x] → a list of x, a type → a leaf (no fields).
Shape = Mapping[str, Any] | list[Any] | type | Any_ | Callable[..., Any]

_BUILTIN_NAMES: dict[str, Shape] = {"range": ANY, "namespace": ANY, "loop": ANY}


class ReferenceProblem(Exception):
    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def _chain(node: nodes.Node) -> tuple[nodes.Node, list[str | int]] | None:
    """``a.b[0].c`` as (root node, ["b", 0, "c"]); None when a part is not a constant."""
    path: list[str | int] = []
    while True:
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if not isinstance(arg, nodes.Const) or not isinstance(arg.value, (str, int)):
                return None
            path.append(arg.value)
            node = node.node
        else:
            path.reverse()
            return node, path


def _resolve(shape: Shape, path: list[str | int], name: str, lineno: int) -> Shape:
    where = name
    for part in path:
        if isinstance(shape, Any_):
            return ANY
        if isinstance(part, str) and part.startswith("_"):
            raise ReferenceProblem(
                f"'{where}.{part}': names starting with _ are not allowed", lineno
            )
        if isinstance(shape, Mapping):
            if part not in shape:
                known = ", ".join(sorted(str(k) for k in shape)) or "none"
                raise ReferenceProblem(f"'{where}' has no field '{part}' (it has: {known})", lineno)
            shape = shape[part]  # type: ignore[index]
        elif isinstance(shape, list):
            if not isinstance(part, int):
                raise ReferenceProblem(f"'{where}' is a list: it has no field '{part}'", lineno)
            shape = shape[0] if shape else ANY
        else:
            raise ReferenceProblem(f"'{where}' is a value: it has no field '{part}'", lineno)
        where = f"{where}.{part}"
    return shape


class _Checker:
    def __init__(self, context: Mapping[str, Shape]) -> None:
        self.scopes: list[dict[str, Shape]] = [{**_BUILTIN_NAMES, **context}]

    def lookup(self, name: str, lineno: int) -> Shape:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        known = ", ".join(sorted(n for n in self.scopes[0] if n not in _BUILTIN_NAMES))
        raise ReferenceProblem(f"unknown variable '{name}' (available: {known})", lineno)

    def bind(self, target: nodes.Node, shape: Shape) -> None:
        if isinstance(target, nodes.Name):
            self.scopes[-1][target.name] = shape
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self.bind(item, ANY)

    def expr_shape(self, node: nodes.Node) -> Shape:
        """Check an expression; the declared shape it has, when it is a plain reference."""
        found = _chain(node)
        if found is not None:
            root, path = found
            if isinstance(root, nodes.Name) and root.ctx == "load":
                return _resolve(self.lookup(root.name, node.lineno), path, root.name, node.lineno)
            if path:
                raise ReferenceProblem(
                    "fields can only be read from context variables, not from a "
                    f"{type(root).__name__.lower()}",
                    node.lineno,
                )
        self.visit_children(node)
        return ANY

    def visit_children(self, node: nodes.Node) -> None:
        for child in node.iter_child_nodes():
            self.visit(child)

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            raise ReferenceProblem("templates cannot include or import other files", node.lineno)
        if isinstance(node, nodes.For):
            self.visit_for(node)
        elif isinstance(node, nodes.Assign):
            self.expr_shape(node.node)
            self.bind(node.target, ANY)
        elif isinstance(node, nodes.AssignBlock):
            self.scopes.append({})
            for child in node.body:
                self.visit(child)
            self.scopes.pop()
            self.bind(node.target, ANY)
        elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
            self.scopes.append({"caller": ANY, "varargs": ANY, "kwargs": ANY})
            if isinstance(node, nodes.Macro):
                self.scopes[-1][node.name] = ANY
                for arg in node.args:
                    self.bind(arg, ANY)
                for default in node.defaults:
                    self.expr_shape(default)
            else:
                self.expr_shape(node.call)
                for arg in node.args:
                    self.bind(arg, ANY)
            for child in node.body:
                self.visit(child)
            self.scopes.pop()
            if isinstance(node, nodes.Macro):
                self.scopes[-1][node.name] = ANY
        elif isinstance(node, nodes.With):
            for value in node.values:
                self.expr_shape(value)
            self.scopes.append({})
            for target in node.targets:
                self.bind(target, ANY)
            for child in node.body:
                self.visit(child)
            self.scopes.pop()
        elif isinstance(node, nodes.Name):
            if node.ctx == "load":
                self.lookup(node.name, node.lineno)
        elif isinstance(node, (nodes.Getattr, nodes.Getitem)):
            self.expr_shape(node)
        else:
            self.visit_children(node)

    def visit_for(self, node: nodes.For) -> None:
        shape = self.expr_shape(node.iter)
        element: Shape = ANY
        if isinstance(shape, list):
            element = shape[0] if shape else ANY
        elif not isinstance(shape, Any_):
            raise ReferenceProblem("a for loop needs a list to walk over", node.lineno)
        self.scopes.append({"loop": ANY})
        self.bind(node.target, element)
        if node.test is not None:
            self.expr_shape(node.test)
        for child in node.body:
            self.visit(child)
        self.scopes.pop()
        for child in node.else_:
            self.visit(child)


def check_references(ast: nodes.Template, context: Mapping[str, Shape]) -> None:
    """Raise :class:`ReferenceProblem` at the first reference the context does not declare."""
    _Checker(context).visit(ast)
