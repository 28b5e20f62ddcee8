"""Execute pages as the book build does, and in the two smoke modes CI adds.

Modes:

* ``book``: what ``make book`` runs for one page (``POSTLIB_BOOK_BUILD=1``, this machine's profile,
  claims enforced) — the quick check while writing a page;
* ``gpu``: ``POSTLIB_PROFILE=gpu`` selects the GPU sizes (their keys, their shapes) on a CPU, with
  Triton's interpreter where a GPU would compile;
* ``no-triton``: the CPU sizes with ``import triton`` failing, as on macOS or Windows.

The smoke modes (``gpu``, ``no-triton``) apply each profile's ``SMOKE`` overrides (few steps, one
repeat) and report ``claim()``s instead of enforcing them, so the two together cost a few seconds per
page: no GPU is needed to catch a page that only works on the machine its author used. One Jupyter
kernel per mode runs every page in turn (its namespace reset between pages, its imports kept): one
kernel start and one ``import torch`` per mode instead of one per page.

Every mode also checks that each ``{glue:...}`` the page's Markdown names was glued by its code (a
missing key would fail the book build much later).

    python -m postlib.book run chapters/01_baseline/attention.md          # as the book build runs it
    python -m postlib.book run --mode smoke                               # gpu + no-triton, every page
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .runtime import BOOK_BUILD_ENV, PROFILE_ENV, SMOKE_ENV

MODES = {
    "book": {"env": {}, "block_triton": False, "what": "as the book build executes it"},
    "gpu": {"env": {PROFILE_ENV: "gpu", SMOKE_ENV: "1"}, "block_triton": False,
            "what": "GPU size profile forced (smoke counts), Triton interpreted on the CPU"},
    "no-triton": {"env": {PROFILE_ENV: "cpu", SMOKE_ENV: "1"}, "block_triton": True,
                  "what": "CPU size profile (smoke counts), `import triton` fails"},
}
SMOKE_MODES = ("gpu", "no-triton")
CLAIM_PREFIX = "[smoke run] claim"

# Run in the kernel before anything else: afterwards `import triton` fails as on a machine without it.
BLOCK_TRITON = '''
import importlib.abc as _abc, sys as _sys
class _NoTriton(_abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: a machine without Triton)", name=name)
        return None
assert "triton" not in _sys.modules, "triton was imported before it could be blocked"
_sys.meta_path.insert(0, _NoTriton())
del _abc, _sys, _NoTriton
'''
RESET = "get_ipython().run_line_magic('reset', '-f')\nimport os as _os\n_os.chdir({folder!r})\ndel _os"
_GLUE_ROLE = re.compile(r"\{glue(?::(?:text|md|any))?\}`([^`]+)`")
_GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::(?:figure|md|math|any))?\}\s+(\S+)", re.M)


def glue_references(text: str) -> set[str]:
    """The glue keys a MyST page's Markdown refers to (roles and directives; ``doc::key`` excluded)."""
    roles = {content.split(":", 1)[0] for content in _GLUE_ROLE.findall(text) if "::" not in content}
    return roles | {k for k in _GLUE_DIRECTIVE.findall(text) if "::" not in k}


@dataclass
class PageResult:
    page: str
    mode: str
    seconds: float
    error: str | None = None
    claims: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class PageKernel:
    """One Jupyter kernel in one mode; ``run(page)`` executes a MyST page's code cells in it."""

    def __init__(self, mode: str, root: Path, cell_timeout: float = 600.0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        self.mode, self.root, self.cell_timeout = mode, Path(root).resolve(), cell_timeout
        self.km = self.kc = None

    def __enter__(self) -> "PageKernel":
        from jupyter_client.manager import KernelManager
        env = dict(os.environ, **MODES[self.mode]["env"], **{BOOK_BUILD_ENV: "1"})
        for name in (PROFILE_ENV, SMOKE_ENV):
            if name not in MODES[self.mode]["env"]:
                env.pop(name, None)
        env.pop("TRITON_INTERPRET", None)  # setup() decides, as on a reader's machine
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH", "")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(self.root))
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        if MODES[self.mode]["block_triton"]:
            error = self._execute(BLOCK_TRITON, [], set())
            if error:
                raise RuntimeError(f"could not block triton in the kernel: {error}")
        return self

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the kernel process has used so far."""
        import psutil
        times = psutil.Process(self.km.provisioner.process.pid).cpu_times()
        return times.user + times.system

    def __exit__(self, *exc) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            self.km.shutdown_kernel(now=True)

    def _execute(self, code: str, stderr: list[str], glued: set[str]) -> str | None:
        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream" and content.get("name") == "stderr":
                stderr.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result"):
                name = (content.get("metadata") or {}).get("scrapbook", {}).get("name")
                if name:
                    glued.add(name)

        reply = self.kc.execute_interactive(code, timeout=self.cell_timeout, output_hook=hook, store_history=False,
                                            allow_stdin=False)
        content = reply["content"]
        if content["status"] != "ok":
            trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(content.get("traceback", [])))
            return f"{content.get('ename')}: {content.get('evalue')}\n{trace[-3000:]}"
        return None

    def run(self, page: str | Path) -> PageResult:
        import jupytext
        path = Path(page)
        path = (path if path.is_absolute() else self.root / path).with_suffix(".md")
        name = str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
        text = path.read_text()
        nb = jupytext.reads(text, fmt="md:myst")
        stderr: list[str] = []
        glued: set[str] = set()
        start = time.perf_counter()
        error = self._execute(RESET.format(folder=str(path.parent)), stderr, glued)
        for index, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            if error:
                break
            error = self._execute(cell.source, stderr, glued)
            if error:
                error = f"code cell {index + 1}:\n{cell.source[:400]}\n---\n{error}"
        missing = sorted(glue_references(text) - glued)
        if not error and missing:
            error = f"the Markdown names glue keys that no cell glued: {missing}"
        claims = [line for chunk in stderr for line in chunk.splitlines() if line.startswith(CLAIM_PREFIX)]
        return PageResult(name, self.mode, time.perf_counter() - start, error, claims)


def run_pages(pages: list, modes: list[str], root: Path, report=print) -> list[PageResult]:
    """Execute ``pages`` in each of ``modes``; ``report`` gets one line per page."""
    results = []
    for mode in modes:
        start = time.perf_counter()
        with PageKernel(mode, root) as kernel:
            for page in pages:
                cpu = kernel.cpu_seconds()
                result = kernel.run(page)
                results.append(result)
                unheld = sum("not held" in c for c in result.claims)
                claims = f"  claims reported: {len(result.claims)}, not held: {unheld}" if result.claims else ""
                report(f"{mode:9s} {result.page:48s} {result.seconds:6.1f} s (CPU {kernel.cpu_seconds() - cpu:5.1f} s)  "
                       f"{'ok' if result.ok else 'FAILED'}{claims}")
                if not result.ok:
                    report(result.error)
            total_cpu = kernel.cpu_seconds()
        report(f"{mode:9s} all pages: {time.perf_counter() - start:.1f} s, kernel CPU {total_cpu:.1f} s (start included)")
    return results
