"""While the learner's function runs, the library's own solutions raise "implement it yourself".

A checker compares the learner's function with postlib's reference, so a learner could pass by
calling that reference. :func:`guarded` wraps the learner's function; for the duration of each call

* every function defined in postlib (outside :data:`EXEMPT_MODULES` and the exercise's ``allow``
  list) has its code object swapped for one that raises :class:`Forbidden`. Swapping ``__code__``
  (not a module attribute) also catches names the notebook bound earlier with
  ``from postlib.attention import softmax_attention``, methods of registered mixers, and postlib
  functions called indirectly (``build_mixer("softmax")(x)``);
* every object in the exercise's ``forbid`` list (a dotted name such as
  ``"torch.nn.functional.scaled_dot_product_attention"`` or the object itself) raises too: Python
  functions by the same code swap, C functions by patching their module attribute and every name in
  the learner's globals bound to them.

Everything is restored when the call returns or raises. The checker's own calls to the reference
(made outside the learner's call) are untouched.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
import types

__all__ = ["Forbidden", "guarded", "EXEMPT_MODULES"]

# Helpers a learner may call freely: the checkers themselves, the chapter set-up, argument checks,
# comparison metrics and figures.
EXEMPT_MODULES = ("postlib.exercises", "postlib.book", "postlib._checks", "postlib.testing", "postlib.viz",
                  "postlib.kernels")


class Forbidden(Exception):
    """The learner's function called the library's own solution."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"your function calls `{name}`, which already solves this exercise — implement it yourself "
                         "(that is the exercise).")


_BLOCKERS: dict[str, types.CodeType] = {}
_ACTIVE: list = []            # the wrapper whose call is in progress (for recording violations)
_imported_all = False


def _blocker_code(qualname: str) -> types.CodeType:
    """A code object, with no free variables, that raises Forbidden(qualname)."""
    if qualname not in _BLOCKERS:
        scope: dict = {}
        exec("def blocked(*args, **kwargs):\n"
             f"    return __import__('postlib.exercises.guard', fromlist=['_']).forbidden({qualname!r}, args, kwargs)\n",
             scope)
        _BLOCKERS[qualname] = scope["blocked"].__code__
    return _BLOCKERS[qualname]


_ORIGINALS: dict[str, types.FunctionType] = {}     # qualname -> a copy running the original code
_ALLOWED_CODES: set = set()                           # code objects of the allowed helpers


def _inside_allowed_helper() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in _ALLOWED_CODES:
            return True
        frame = frame.f_back
    return False


def forbidden(name: str, args=(), kwargs=None):
    """Called by a blocked function. Inside an allowed helper, run the original; otherwise remember the
    violation (even if the learner catches the error) and raise."""
    if name in _ORIGINALS and _inside_allowed_helper():
        return _ORIGINALS[name](*args, **(kwargs or {}))
    if _ACTIVE:
        _ACTIVE[-1].violations.append(name)
    raise Forbidden(name)


def _innermost(fn):
    while not isinstance(fn, types.FunctionType) or fn.__closure__:
        fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            return None
    return fn


def _import_postlib():
    """Import every postlib module once, so a module the learner imports mid-call is guarded too."""
    global _imported_all
    if _imported_all:
        return
    import postlib
    for info in pkgutil.walk_packages(postlib.__path__, "postlib."):
        if info.name.startswith(EXEMPT_MODULES) or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional peer missing: nothing to guard there
            pass
    _imported_all = True


def _postlib_functions(allow_ids: set[int]) -> list[tuple[types.FunctionType, str]]:
    found: dict[int, tuple] = {}

    def add(obj, qualname):
        fn = _innermost(obj)
        if fn is not None and id(fn) not in allow_ids and id(obj) not in allow_ids:
            found.setdefault(id(fn), (fn, qualname))

    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == "postlib" or modname.startswith("postlib.")):
            continue
        if modname.startswith(EXEMPT_MODULES):
            continue
        for attr, obj in list(vars(module).items()):
            if getattr(obj, "__module__", None) != modname:
                continue
            if isinstance(obj, type):
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("__") and meth_name not in ("__init__", "__call__", "__new__"):
                        continue      # __del__, __repr__, __eq__ ... may run from the garbage collector
                    inner = getattr(meth, "__func__", meth)
                    if isinstance(inner, property):
                        inner = inner.fget
                    if callable(inner):
                        add(inner, f"{modname}.{obj.__name__}.{meth_name}")
            elif callable(obj):
                add(obj, f"{modname}.{attr}")
    return list(found.values())


def _resolve(target):
    """(object, home module or None, attribute name) for a dotted name or an object."""
    if isinstance(target, str):
        modname, _, attr = target.rpartition(".")
        while modname:
            try:
                module = importlib.import_module(modname)
                break
            except ImportError:
                modname, _, head = modname.rpartition(".")
                attr = f"{head}.{attr}"
        obj = module
        for part in attr.split("."):
            parent, obj = obj, getattr(obj, part)
        return obj, parent, part, target
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    attr = getattr(target, "__name__", None)
    parent = module if module is not None and getattr(module, attr or "", None) is target else None
    return target, parent, attr, name


class _Patches:
    """Apply and undo every swap for one call."""

    def __init__(self, fn, forbid, allow):
        self.fn, self.forbid, self.allow = fn, forbid, allow
        self.undo: list = []

    def __enter__(self):
        _import_postlib()
        allow_ids = {id(_innermost(a) or a) for a in map(lambda a: _resolve(a)[0], self.allow)}
        allow_ids |= {id(_resolve(a)[0]) for a in self.allow}
        targets = _postlib_functions(allow_ids)
        for allowed in self.allow:
            fn = _innermost(_resolve(allowed)[0])
            if fn is not None:
                _ALLOWED_CODES.add(fn.__code__)
        others = []
        for item in self.forbid:
            obj, parent, attr, name = _resolve(item)
            fn = _innermost(obj)
            if fn is not None:
                targets.append((fn, name))
            else:
                others.append((obj, parent, attr, name))
        try:
            for fn, name in targets:
                original = fn.__code__
                copy = types.FunctionType(original, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
                copy.__kwdefaults__ = fn.__kwdefaults__
                _ORIGINALS[name] = copy
                fn.__code__ = _blocker_code(name)
                self.undo.append((fn, "__code__", original))
            learner_globals = getattr(_innermost(self.fn) or self.fn, "__globals__", {})
            for obj, parent, attr, name in others:
                blocker = _c_blocker(name)
                if parent is not None:
                    self.undo.append((parent, attr, obj))
                    setattr(parent, attr, blocker)
                for key, value in list(learner_globals.items()):
                    if value is obj:
                        self.undo.append((learner_globals, key, obj))
                        learner_globals[key] = blocker
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        _ORIGINALS.clear()
        _ALLOWED_CODES.clear()
        while self.undo:
            holder, attr, value = self.undo.pop()
            if isinstance(holder, dict):
                holder[attr] = value
            else:
                setattr(holder, attr, value)
        return False


def _c_blocker(name):
    def blocked(*args, **kwargs):
        return forbidden(name)
    return blocked


def guarded(fn, forbid=(), allow=()):
    """``fn`` wrapped so that postlib's solutions (and ``forbid``) raise :class:`Forbidden` during each call.

    The wrapper records every attempted forbidden call in ``.violations`` (a learner's ``try/except``
    cannot hide one); :func:`postlib.exercises.run_checker` fails the exercise when it is not empty.
    """
    @functools.wraps(fn)
    def call(*args, **kwargs):
        _ACTIVE.append(call)
        try:
            with _Patches(fn, forbid, allow):
                return fn(*args, **kwargs)
        finally:
            _ACTIVE.pop()

    call.violations = []
    return call
