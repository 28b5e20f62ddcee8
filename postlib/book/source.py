"""Show the source of a postlib object in a page: the one way chapters list code.

    show_source(softmax_attention, docstring=False)
    show_source("postlib.kernels.selective_scan:_selective_scan_fwd")   # no import: works without Triton

The source is read from the module's file with ``ast`` (so a Triton kernel defined under
``if triton_available():`` is found even where Triton is missing), the docstring can be dropped, and
the listing says which file and lines it comes from. In the book it is highlighted HTML whose long
lines wrap instead of scrolling sideways; a listing longer than ``collapse_after`` lines is folded
under a "Show the source" toggle.
"""
from __future__ import annotations

import ast
import html
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path

COLLAPSE_AFTER = 30


@dataclass
class Listing:
    """Source lines of one definition, with where they come from."""

    source: str
    qualname: str
    module: str
    path: str
    first_line: int
    last_line: int
    collapsed: bool

    @property
    def n_lines(self) -> int:
        return self.source.count("\n") + 1

    def heading(self) -> str:
        name = self.module if self.qualname == "<module>" else f"{self.module}.{self.qualname}"
        return f"{name} · {self.path}, lines {self.first_line}–{self.last_line}"

    def __repr__(self) -> str:
        return f"# {self.heading()}\n{self.source}"

    def _repr_html_(self) -> str:
        from .runtime import in_book_build
        body = _highlight(self.source, inline_styles=not in_book_build())
        title = html.escape(self.heading())
        if self.collapsed:
            return (f'<details class="postlib-listing"><summary>Show the source: <code>{title}</code> '
                    f'({self.n_lines} lines)</summary>{body}</details>')
        return f'<div class="postlib-listing"><p class="postlib-listing-title"><code>{title}</code></p>{body}</div>'


HANGING_INDENT = 4   # a wrapped line continues this many columns right of its own indentation


def _highlight(source: str, inline_styles: bool) -> str:
    """Highlighted HTML, one block per source line, so that a line too long for the column wraps with a
    hanging indent (its continuation sits right of the line's own indentation) instead of scrolling."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - IPython depends on pygments
        lines = [html.escape(line) for line in source.split("\n")]
    else:
        # In the book the theme's stylesheet colours the token classes (light and dark mode); elsewhere
        # (Colab, Jupyter) there is no such stylesheet, so the colours are inlined.
        formatter = HtmlFormatter(nowrap=True, noclasses=inline_styles)
        lines = highlight(source, PythonLexer(), formatter).rstrip("\n").split("\n")  # spans close per line
    blocks = []
    for text, line in zip(source.split("\n"), lines):
        hang = len(text) - len(text.lstrip(" ")) + HANGING_INDENT
        blocks.append(f'<span class="postlib-line" style="display:block;padding-left:{hang}ch;'
                      f'text-indent:-{hang}ch">{line or " "}</span>')
    style = "" if not inline_styles else ' style="white-space:pre-wrap;overflow-wrap:anywhere"'
    return f'<div class="highlight"><pre{style}>{"".join(blocks)}</pre></div>'


def _module_file(module_name: str) -> Path:
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"no Python source file for module {module_name!r}")
    return Path(spec.origin)


def _find(body: list[ast.stmt], name: str) -> ast.AST | None:
    """The def/class ``name`` among ``body``, looking inside if/try/with blocks (not inside functions)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [getattr(node, attr, []) for attr in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                found = _find(block, name)
                if found is not None:
                    return found
    return None


def _target(obj) -> tuple[str, str]:
    """(module name, qualname) of an object or of a "module:qualname" / "module" string."""
    if isinstance(obj, str):
        module, _, qualname = obj.partition(":")
        return module, qualname
    if inspect.ismodule(obj):
        return obj.__name__, ""
    target = obj
    if type(obj).__name__ in ("JITFunction", "InterpretedFunction") and hasattr(obj, "fn"):
        target = obj.fn  # a Triton kernel wraps the Python function it was decorated from
    target = inspect.unwrap(target) if callable(target) else target
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(f"show_source needs a module, class, function or 'module:qualname', got {obj!r}")
    return module, qualname


def _docstring_lines(node) -> tuple[int, int] | None:
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0].lineno, body[0].end_lineno
    return None


def show_source(obj, *, docstring: bool = True, collapse_after: int = COLLAPSE_AFTER,
                collapsed: bool | None = None) -> Listing:
    """The source of ``obj`` (a function, class, method, module or "module:qualname") as a ``Listing``,
    displayed as the cell's output. ``docstring=False`` drops the docstring; a listing longer than
    ``collapse_after`` lines is folded (``collapsed`` forces either way)."""
    module, qualname = _target(obj)
    path = _module_file(module)
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    node: ast.AST = tree
    for part in filter(None, qualname.split(".")):
        if part == "<locals>":
            raise ValueError(f"{module}:{qualname} is defined inside a function; show the enclosing function")
        found = _find(node.body, part)
        if found is None:
            raise ValueError(f"no definition {qualname!r} in {path.name} (module {module})")
        node = found
    if node is tree:
        first, last = 1, len(lines)
    else:
        decorators = [d.lineno for d in getattr(node, "decorator_list", [])]
        first, last = min([node.lineno, *decorators]), node.end_lineno
    keep = list(range(first, last + 1))
    doc = _docstring_lines(node) if not docstring else None
    if doc:
        keep = [n for n in keep if not doc[0] <= n <= doc[1]]
    chunk = [lines[n - 1] for n in keep]
    indent = min((len(s) - len(s.lstrip()) for s in chunk if s.strip()), default=0)
    source = "\n".join(s[indent:] for s in chunk).rstrip()
    root = Path(__import__(module.split(".")[0]).__file__).resolve().parent.parent
    try:
        shown_path = str(path.resolve().relative_to(root))
    except ValueError:
        shown_path = path.name
    fold = collapsed if collapsed is not None else len(chunk) > collapse_after
    return Listing(source=source, qualname=qualname or "<module>", module=module, path=shown_path,
                   first_line=first, last_line=last, collapsed=fold)
