"""The notebooks read as a book: short chapters, short lines, references a reader can open, figures saved with the
notebooks, a website that shows them (tools/docs.py), and the tools that check all this."""
import ast, json, re, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import docs, notebooks  # noqa: E402  (tools/, not a package)

NBS = sorted((REPO / "nbs").glob("*.ipynb"))
PAPER, CODE = "arxiv.org/abs/2308.11062", "github.com/google-research/scenic/tree/main/scenic/projects/unloc"
DRAWS = re.compile(r"\bplt\.|\.imshow\(|plot_[a-z_]*\(|\.savefig\(")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _draws(source: str) -> bool:
    "True when a top-level statement of the cell (not a definition) plots."
    code = "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in source.splitlines())
    try: tree = ast.parse(code)
    except SyntaxError: return bool(DRAWS.search(code))
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return any(DRAWS.search(ast.get_source_segment(code, n) or "") for n in tree.body if not isinstance(n, defs))


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_chapter_size_and_lines(path):
    "A chapter stays short: at most 700 lines, no code line over 120 characters, no `;` chains."
    s = notebooks.stats(path)
    assert s["lines"] <= 700, f"{path.name}: {s['lines']} lines"
    assert s["long_lines"] == 0, f"{path.name}: {s['long_lines']} code lines over 120 characters"
    assert s["semicolon_lines"] == 0, f"{path.name}: {s['semicolon_lines']} lines chain statements with ';'"


def test_semicolon_finder():
    "`;` in strings and comments is not a chain; one that ends a statement is."
    assert notebooks.semicolon_lines('x = "a; b"  # c; d\ny = 1; z = 2\nplt.plot(x);') == [2, 3]
    assert notebooks.semicolon_lines("%time f(); g()\n!ls; pwd") == []


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_cites_what_a_reader_can_open(path):
    "No pointer to files outside the repository; a chapter that cites the paper links it."
    text = "\n".join(_source(c) for c in _cells(path))
    for outside in ("../shared", "UNLOC_SPEC", "spec §"):
        assert outside not in text, f"{path.name} cites {outside!r}, which is not in the repository"
    if re.search(r"\bpaper\b", text): assert PAPER in text, f"{path.name} cites the paper without linking it"


def test_index_links_paper_and_code():
    text = "\n".join(_source(c) for c in _cells(REPO / "nbs/index.ipynb"))
    assert PAPER in text and CODE in text


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_figures_are_saved(path):
    "Every cell that draws has its picture saved in the notebook, so GitHub and the website show it unrun."
    for cell in _cells(path):
        if cell["cell_type"] != "code" or not _draws(_source(cell)): continue
        if "#| eval: false" in _source(cell) or "#| cuda" in _source(cell) or "#| hide" in _source(cell): continue
        if re.search(r"\binteract\(", _source(cell)): continue  # sliders: the plain call before them is saved
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: a saved error output in cell {cell.get('id')}"
        if "plt.close" in _source(cell) or "savefig" in _source(cell): continue  # draws to a file, by design
        assert images, f"{path.name}: cell {cell.get('id')} draws but no figure is saved (tools/notebooks.py run)"


def test_docs_site():
    "tools/docs.py renders a page per notebook; the model, targets and demo pages show their figures."
    pages = {p.stem: p for p in docs.build()}  # the site itself, _docs/ (git ignores it)
    assert set(pages) == {p.stem for p in NBS}
    for stem in pages:
        text = pages[stem].read_text()
        assert "#| export" not in text and "#| hide" not in text, stem
    for prefix in ("06_model", "07_targets", "15_demo"):
        stem = next(s for s in pages if s.startswith(prefix))
        saved = sum("image/png" in o.get("data", {}) for c in _cells(REPO / f"nbs/{stem}.ipynb")
                    for o in c.get("outputs", []))
        assert saved >= 1 and docs.figures(pages[stem]) >= saved, (stem, saved, docs.figures(pages[stem]))
    index = pages["index"].read_text()
    for image in re.findall(r'src="(images/[^"]+)"', index): assert (REPO / "_docs" / image).is_file(), image
    assert 'src="images/unloc_model.png"' in index
