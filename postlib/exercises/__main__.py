"""python -m postlib.exercises {grade, student, student-book, list, hash}.

    grade NB.ipynb [NB ...] [--json F] [--csv F] [--timeout S] [--jobs N]   score completed notebooks
    student [--check]                                            write (or check) student/<page>.ipynb
    student-book [--executed DIR] [--out DIR]                    lay out the student book's sources
    list                                                         every exercise with its marks
    hash ID OPTION                                               the stored answer of a choice question
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postlib.exercises", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="run completed notebooks headless and score them")
    g.add_argument("notebooks", nargs="+", type=Path)
    g.add_argument("--json", type=Path, help="write the report as JSON")
    g.add_argument("--csv", type=Path, help="write one row per notebook and exercise")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds per cell (default 300)")
    g.add_argument("--kernel", default="python3")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its own kernel")
    s = sub.add_parser("student", help="write the student notebooks (solutions removed) under student/")
    s.add_argument("--check", action="store_true", help="only report stale notebooks (exit 1 if any)")
    s.add_argument("--root", type=Path, default=Path("."))
    b = sub.add_parser("student-book", help="lay out the student book from the executed notebooks")
    b.add_argument("--root", type=Path, default=Path("."))
    b.add_argument("--executed", type=Path, default=Path("_build/jupyter_execute"))
    b.add_argument("--out", type=Path, default=Path("_build/student"))
    sub.add_parser("list", help="every registered exercise and its marks")
    h = sub.add_parser("hash", help="the stored form of a choice answer")
    h.add_argument("id")
    h.add_argument("option")
    args = parser.parse_args(argv)

    if args.command == "grade":
        from .grader import format_report, grade, write_csv, write_json
        missing = [str(p) for p in args.notebooks if not p.exists()]
        if missing:
            parser.error(f"no such notebook: {', '.join(missing)}")
        grades = grade(args.notebooks, cell_timeout=args.timeout, kernel_name=args.kernel, jobs=args.jobs)
        print(format_report(grades))
        if args.json:
            write_json(grades, args.json)
        if args.csv:
            write_csv(grades, args.csv)
        return 0
    if args.command == "student":
        from .editions import stale_student_notebooks, write_student_notebooks
        if args.check:
            stale = stale_student_notebooks(args.root)
            for path in stale:
                print(f"stale: {path}")
            return 1 if stale else 0
        for path in write_student_notebooks(args.root):
            print(f"wrote {path}")
        return 0
    if args.command == "student-book":
        from .editions import StaleBuild, student_book_source
        try:
            out = student_book_source(args.root, args.executed, args.out)
        except StaleBuild as stale:
            print(f"stale: {stale}", file=sys.stderr)
            return 3
        print(out)
        return 0
    if args.command == "list":
        from .core import all_exercises
        for ex in all_exercises().values():
            print(f"{ex.id:<40} {ex.kind:<10} {ex.marks}  {ex.name}")
        return 0
    if args.command == "hash":
        from .questions import answer_hash
        print(answer_hash(args.id, args.option))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
