"""Run the notebooks the way a reader does, and keep what they show.

    python tools/notebooks.py run NB...
        execute each notebook (slow cells included, GPU cells skipped) and save its outputs in place, so GitHub and
        the docs site show every figure
    python tools/notebooks.py rerun [--jobs 2] [--once NAME,NAME] [--seconds FILE] NB...
        execute each notebook, then run every section (a heading of level 2-4 and what follows it) once more, first
        to last: a section must still run after the sections below it ran, and print what it printed the first time
    python tools/notebooks.py stats [NB...]
        lines of each notebook, code lines over 120 characters, lines that chain statements with `;` (all of nbs/
        when no notebook is named)

`rerun` fails on an exception in either pass and on a section whose text output changed (figures and lines that
measure seconds are not compared; temporary paths, hashes and addresses are masked). Both commands skip cells marked
`#| eval: false`, `#| cuda` and `nbdev_export()`, as `nbdev_test --flags slow` does.
"""
import argparse, io, json, os, re, sys, time, tokenize
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import extract_directives

SKIP_FLAGS = {"cuda"}
TIMING = re.compile(r"(\d+(\.\d+)?\s*(s|ms|µs|us|min|seconds?)\b)|(it/s|s/it)|\d+:\d\d")
VOLATILE = [(re.compile(r"/tmp/tmp\w+"), "<tmp>"), (re.compile(r"[0-9a-f]{2}/[0-9a-f]{16,}|[0-9a-f]{16,}"), "<hash>"),
            (re.compile(r"<ipython-input-[^>]*>"), "<cell>"), (re.compile(r"0x[0-9a-f]+"), "<address>")]


def _skipped(cell) -> bool:
    "True for cells the tests skip: not code, `nbdev_export()`, `#| eval: false`, GPU-only."
    if cell.cell_type != "code" or "nbdev_export" + "(" in cell.source: return True
    directives = extract_directives(cell, remove=False)
    if directives.get("eval:", [""])[0].lower() == "false": return True
    return bool(SKIP_FLAGS & directives.keys())


def _sections(nb) -> list[list]:
    "Cells grouped by headings (levels 2 to 4); the cells before the first one form section 0."
    groups = [[]]
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.match(r"#{2,4} ", cell.source.lstrip()): groups.append([])
        groups[-1].append(cell)
    return [g for g in groups if g]


def _text(outputs) -> str:
    "The text a cell showed (streams and text/plain results), without lines that measure time."
    parts = []
    for o in outputs or []:
        if o.get("output_type") == "stream": parts.append("".join(o.get("text", "")))
        elif "data" in o and "text/plain" in o["data"] and "image/png" not in o["data"]:
            parts.append("".join(o["data"]["text/plain"]))
    text = "".join(parts)
    for pattern, stand_in in VOLATILE: text = pattern.sub(stand_in, text)
    return "\n".join(l for l in text.splitlines() if not TIMING.search(l))


def _shell(path: Path) -> CaptureShell:
    os.environ["IN_TEST"] = "1"
    shell = CaptureShell(path)
    shell.set_path(path.parent.resolve())
    return shell


def _run_cells(shell: CaptureShell, cells, path: Path) -> None:
    for cell in cells:
        if _skipped(cell): continue
        shell.cell(cell)
        if shell.exc: raise RuntimeError(shell.prettytb(fname=path))


PLOTLY = "application/vnd.plotly.v1+json"


def _kept(outputs: list) -> list:
    "Outputs worth saving: without blank stream lines and the plotly JSON a widget leaks when no frontend draws it."
    kept = []
    for o in outputs or []:
        if o.get("output_type") == "stream" and not "".join(o.get("text", "")).strip(): continue
        if PLOTLY in o.get("data", {}):
            o["data"] = {k: v for k, v in o["data"].items() if k != PLOTLY}
            if not o["data"]: continue
        kept.append(o)
    return kept


def run(path: Path) -> float:
    "Execute `path` top to bottom and save the outputs into it; returns seconds."
    nb, start, cwd = read_nb(path), time.time(), os.getcwd()
    shell = _shell(path)
    try:
        os.chdir(path.parent)
        _run_cells(shell, nb.cells, path)
    finally: os.chdir(cwd)
    for cell in nb.cells:
        if cell.cell_type == "code": cell.execution_count, cell.outputs = None, _kept(cell.outputs)
    write_nb(nb, path)
    return time.time() - start


def rerun(path: Path, twice: bool = True) -> tuple[list[str], float]:
    """Problems found when each section runs again after the whole notebook ran (empty: none), and the seconds of the
    first pass (the whole notebook once); `twice=False`: the first pass only."""
    nb, cwd, problems, start = read_nb(path), os.getcwd(), [], time.time()
    shell = _shell(path)
    try:
        os.chdir(path.parent)
        try: _run_cells(shell, nb.cells, path)
        except RuntimeError as e: return [f"{path.name} fails:\n{e}"], time.time() - start
        one_pass = time.time() - start
        if not twice: return [], one_pass
        first = {id(c): _text(c.get("outputs")) for c in nb.cells if c.cell_type == "code"}
        for k, section in enumerate(_sections(nb)):
            title = section[0].source.splitlines()[0] if section[0].cell_type == "markdown" else "(top)"
            try: _run_cells(shell, section, path)
            except RuntimeError as e:
                problems.append(f"{path.name}: section {k} {title!r} fails when run again:\n{e}")
                continue
            for c in section:
                if c.cell_type == "code" and not _skipped(c) and _text(c.get("outputs")) != first[id(c)]:
                    problems.append(f"{path.name}: section {k} {title!r} prints something else when run again; "
                                    f"cell:\n{c.source[:300]}\nfirst:\n{first[id(c)][:400]}\n"
                                    f"again:\n{_text(c.get('outputs'))[:400]}")
    finally: os.chdir(cwd)
    return problems, one_pass


def semicolon_lines(source: str) -> list[int]:
    "Line numbers (from 1) of `source` where `;` ends a statement (strings and comments don't count)."
    code = "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in source.splitlines())
    try: tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError): return []
    return sorted({t.start[0] for t in tokens if t.type == tokenize.OP and t.string == ";"})


def stats(path: Path) -> dict:
    "Size of a notebook as a reader meets it: source lines of all cells, long code lines, `;` chains."
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    code_lines = [l for s in code for l in s.splitlines()]
    return dict(lines=sum(len("".join(c["source"]).splitlines()) for c in cells), code_lines=len(code_lines),
                long_lines=sum(len(l) > 120 for l in code_lines),
                semicolon_lines=sum(len(semicolon_lines(s)) for s in code))


def _check(path: Path, twice: bool) -> tuple[list[str], float, float]:
    "`rerun` in a worker process; IPython's shell takes over `__main__`, which the next job needs: put it back."
    start, main_module = time.time(), sys.modules["__main__"]
    try: return *rerun(path, twice), time.time() - start
    finally: sys.modules["__main__"] = main_module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "rerun", "stats"])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="rerun: notebooks checked at once, one process each")
    parser.add_argument("--once", type=lambda s: s.split(","), default=[],
                        help="rerun: notebooks run one pass only, names without .ipynb, comma-separated")
    parser.add_argument("--seconds", type=Path, help="rerun: write each notebook's one-pass seconds to this JSON file")
    args = parser.parse_intermixed_args()
    if args.command == "stats":
        paths = args.notebooks or sorted(Path(__file__).parent.parent.joinpath("nbs").glob("*.ipynb"))
        rows = {p.name: stats(p) for p in paths}
        for name, r in rows.items(): print(f"{name:28s} " + "  ".join(f"{k} {v:5d}" for k, v in r.items()))
        total, long = sum(r["code_lines"] for r in rows.values()), sum(r["long_lines"] for r in rows.values())
        print(f"code lines over 120 characters: {long} of {total} ({100 * long / max(total, 1):.2f} %)")
        return
    if args.command == "run":
        for path in args.notebooks: print(f"{path}: ran and saved in {run(path.resolve()):.1f} s", flush=True)
        return
    failed, one_pass_seconds = [], {}
    with ProcessPoolExecutor(args.jobs) as pool:
        jobs = {pool.submit(_check, p.resolve(), p.stem not in args.once): p for p in args.notebooks}
        for job in as_completed(jobs):
            problems, one_pass, seconds = job.result()
            passes = "every section run twice" if jobs[job].stem not in args.once else "run once"
            print(f"{jobs[job]}: {'OK' if not problems else 'FAILED'}, {passes}, {seconds:.1f} s "
                  f"(one pass {one_pass:.1f} s)", flush=True)
            one_pass_seconds[jobs[job].stem] = round(one_pass, 1)
            for p in problems: print(p, file=sys.stderr)
            failed += problems
    if args.seconds: args.seconds.write_text(json.dumps(dict(sorted(one_pass_seconds.items())), indent=1) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
