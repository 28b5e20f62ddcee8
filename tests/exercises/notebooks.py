"""Learner notebooks made from the chapters' own exercise sections, for the grader's tests.

``learner_notebook(kind)`` puts every chapter's "Exercises" section in one notebook, as a learner would
hand it in: each cell tagged ``exercise`` replaced by

* "correct": the chapter's own solution cells (so the grader scores the instructor's answers),
* "wrong": the same solutions with every answer perturbed (outputs moved, choices shifted),
* "cheat": for the exercises in ``CHEATS``, a function that calls postlib's own implementation.

New chapters join automatically: their sections come from the same sources.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from postlib.exercises.editions import EXERCISE_TAG, exercise_calls, exercise_section, is_solution, read_page, tags, toc_pages

ROOT = Path(__file__).resolve().parents[2]

PREAMBLE = """\
import math
import numpy as np
import torch
import torch.nn.functional as F
torch.set_num_threads(1)
"""

# Perturb any answer: a learner whose every answer is off.
WRONG = '''\
def _wrong(x):
    if callable(x):
        return lambda *args, **kwargs: _wrong(x(*args, **kwargs))
    if isinstance(x, torch.Tensor):
        return ~x if x.dtype == torch.bool else x * 1.5 + 1
    if isinstance(x, np.ndarray):
        return x * 1.5 + 1
    if isinstance(x, bool):
        return not x
    if isinstance(x, (int, float)):
        return x * 1.5 + 1
    if isinstance(x, str):
        return "abcd"[("abcd".index(x.strip("()").lower()) + 1) % 3]
    if isinstance(x, (tuple, list)):
        return type(x)(_wrong(v) for v in x)
    if isinstance(x, dict):
        return {k: _wrong(v) for k, v in x.items()}
    return x
'''

# Learners who call the library instead of implementing: every one must score 0. (An exercise whose answer a
# later solution reuses, such as sparse_attention.sliding_mask, is left out: the later one would fail too.)
CHEATS = {
    "baseline.softmax_attention": ("from postlib.attention import softmax_attention as sa\n"
                                   "check_softmax_attention(lambda q, k, v: sa(q, k, v))"),
    "baseline.causal_mask": ("from postlib.attention import causal_mask\n"
                             "check_causal_mask(lambda a, b: causal_mask(a, b))"),
    "baseline.online_softmax_merge": ("from postlib.attention.derive import merge_numeric\n"
                                      "check_online_softmax_merge(merge_numeric)"),
    "baseline.kv_cache_step": ("import postlib\n"
                               "def kv(q, k, v, cache):\n"
                               "    K, V = torch.cat([cache['k'], k], 2), torch.cat([cache['v'], v], 2)\n"
                               "    return postlib.attention.flash_attention(q, K, V), {'k': K, 'v': V}\n"
                               "check_kv_cache_step(kv)"),
    "baseline.attention_flops": ("from postlib.attention.derive import attention_costs\n"
                                 "check_attention_flops(lambda n, d: attention_costs(n, d)['flops_materialised'])"),
    "kernel_attention.linear_attention": ("from postlib.attention.linear import linear_attention\n"
                                          "check_linear_attention(linear_attention)"),
    "kernel_attention.linear_attention_rnn": (
        "from postlib.attention.linear import linear_attention\n"
        "check_linear_attention_rnn(lambda q, k, v: linear_attention(q, k, v, causal=True))"),
    "lola.self_recall_error": ("from postlib.attention.lola import self_recall_error\n"
                               "check_self_recall_error(lambda k, v, S, z: self_recall_error(k, v, S, z))"),
    "lowrank_hashing.linformer": ("from postlib.attention.linformer import linformer_attention\n"
                                  "check_linformer(linformer_attention)"),
    "ssm.bilinear": ("from postlib.ssm.discretize import discretize\n"
                     "check_bilinear(lambda A, B, dt: discretize(A, B, dt, 'bilinear'))"),
    "ssm.hippo_legs": "from postlib.ssm.hippo import hippo\ncheck_hippo_legs(lambda N: hippo('legs', N))",
    "ssm.masked_accuracy": "from postlib.train import masked_accuracy\ncheck_masked_accuracy(masked_accuracy)",
    "ssm.legs_step": ("from postlib.ssm.hippo import hippo_online\n"
                      "check_legs_step(lambda c, f, k, A, B: hippo_online('legs', len(c), [f], 1.0)[-1])"),
    "ssm.woodbury_solve": ("def dense(g, lam, p, q, b):\n"
                           "    M = g * torch.eye(len(lam), dtype=torch.complex128) - torch.diag(lam) + p[:, None] * q.conj()\n"
                           "    return torch.linalg.solve(M, b)\n"
                           "check_woodbury_solve(dense)"),
    "ssm.scan_step": ("from postlib.ssm.scan import selective_scan\n"
                      "check_scan_step(lambda x, u, d, A, B, C: (x, selective_scan(u[..., None], d[..., None], A, "
                      "B[..., None], C[..., None])[..., 0]))"),
    "mixing.wkv_weights": "from postlib.recurrent.wkv import wkv_weights\ncheck_wkv_weights(wkv_weights)",
    "mixing.rwkv5_step": ("from postlib.recurrent.recurrence import recurrent_step\n"
                          "def step(r, k, v, w, u, S):\n"
                          "    return recurrent_step(r, k * u, v, S)[0], recurrent_step(r, k, v, S, torch.log(w).expand_as(k))[1]\n"
                          "check_rwkv5_step(step)"),
    "mixing.segment_merge": "from postlib.recurrent.wkv import combine\ncheck_segment_merge(combine)",
    "sparse_attention.window_attention": (
        "from postlib.sparse import sparse_attention\n"
        "check_window_attention(lambda q, k, v, w: sparse_attention(q, k, v, 'sliding', causal=True, window=w))"),
    "recurrent_causal.decay_matrix": "from postlib.recurrent.retention import decay_matrix\ncheck_decay_matrix(decay_matrix)",
    "recurrent_causal.recurrent_retention": ("from postlib.recurrent.retention import retention_recurrent\n"
                                             "check_recurrent_retention(retention_recurrent)"),
    "recurrent_causal.chunkwise_retention": (
        "from postlib.recurrent.retention import retention_chunkwise\n"
        "check_chunkwise_retention(lambda q, k, v, g, c: retention_chunkwise(q, k, v, g, chunk_size=c))"),
    "recurrent_causal.rel_shift": "from postlib.recurrent.transformer_xl import rel_shift\ncheck_rel_shift(rel_shift)",
    "lab_outlook.topk_attention": ("from postlib.outlook.long_context import topk_attention\n"
                                   "check_topk_attention(topk_attention)"),
    "lab_outlook.stream_segments": ("from postlib.outlook.long_context import stream_linear_attention\n"
                                    "check_stream_segments(lambda segments: stream_linear_attention(segments))"),
}


def _wrong_source(source: str) -> str:
    """Wrap every argument of a checker or prediction call in ``_wrong(...)``."""
    return re.sub(r"\b((?:check|predict)_\w+)\((.+?)\)(;?)(\s*#.*)?$", r"\1(_wrong(\2))\3\4", source, flags=re.M)


def _imports(source: str) -> str:
    """The import statements of a cell (the learner keeps them when writing the answer)."""
    tree = ast.parse(source)
    return "\n".join(ast.get_source_segment(source, node) for node in tree.body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def learner_cells(kind: str, path: Path) -> list:
    nb = read_page(path)
    section = exercise_section(nb)
    cells = []
    for i, cell in enumerate(section):
        if is_solution(cell):
            continue
        if cell.cell_type == "code" and EXERCISE_TAG in tags(cell):
            solutions = []
            for later in section[i + 1:]:
                if not is_solution(later):
                    break
                solutions.append(later.source.replace("assert check_", "check_"))
            source = "\n\n".join([_imports(cell.source), *solutions]).strip()
            if kind == "wrong":
                source = _wrong_source(source)
            elif kind == "cheat":
                ids = exercise_calls(cell.source)
                if ids and ids[0] in CHEATS:
                    source = f"{_imports(cell.source)}\n{CHEATS[ids[0]]}".strip()
            cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": [EXERCISE_TAG]}))
        elif cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source))
        else:
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
    return cells


def learner_notebook(kind: str, dest: Path, pages=None) -> Path:
    cells = [nbformat.v4.new_code_cell(PREAMBLE + (WRONG if kind == "wrong" else ""))]
    for page in pages or [p["path"] for p in toc_pages(ROOT) if p.get("path") and p["path"].suffix == ".md"]:
        cells += learner_cells(kind, page)
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                        "display_name": "Python 3"}})
    nbformat.write(nb, dest)
    return dest
