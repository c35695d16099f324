"""Build the book's website into `_docs/`: one HTML page per notebook, every saved figure on its page.

    python tools/docs.py            # -> _docs/index.html, _docs/00_timeline.html, ...

The notebooks carry their outputs (`python tools/notebooks.py run nbs/*.ipynb` saves them), so nothing is trained,
decoded or even executed here: each page is the notebook as saved, with the cells nbdev hides from its docs left out
(`#| hide`) and the `#|` directive lines stripped, rendered by nbconvert's HTML exporter with a bar of links to every
chapter on top. nbdev's own `nbdev_docs` needs quarto, and PyPI's `quarto-cli` is a source package that downloads the
quarto binary from GitHub while it builds, which a machine that reaches only package registries cannot do.
"""
import argparse, re, shutil
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbdev.process import extract_directives

REPO = Path(__file__).resolve().parent.parent
IMG = re.compile(r"<img\b[^>]*\bsrc=\"data:image/(png|jpeg|svg\+xml)")


def _title(nb) -> str:
    "The notebook's `# Title`, or its file name."
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            return cell.source.lstrip()[2:].splitlines()[0].strip()
    return ""


def _nav(pages: list[tuple[str, str]], here: str) -> str:
    "Markdown bar linking every page; the current one in bold."
    links = [f"**{title}**" if stem == here else f"[{title}]({stem}.html)" for stem, title in pages]
    return " · ".join(links) + "\n\n---"


def for_readers(nb):
    "The notebook as its page shows it: `#| hide` cells left out, directive lines stripped (outputs kept)."
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            directives = extract_directives(cell, remove=False)
            if "hide" in directives: continue
            cell.source = "\n".join(l for l in cell.source.splitlines() if not l.startswith("#|")).strip("\n")
            if not cell.source and not cell.get("outputs"): continue
        cells.append(cell)
    nb.cells = cells
    return nb


def build(out: Path = REPO / "_docs") -> list[Path]:
    "Render every notebook of nbs/ to `out`/<name>.html with the contents bar; returns the pages."
    notebooks = {p.stem: for_readers(nbformat.read(p, as_version=4)) for p in sorted((REPO / "nbs").glob("*.ipynb"))}
    pages = [(stem, "Home" if stem == "index" else f"{stem[:3].rstrip('_')} {_title(nb) or stem}")
             for stem, nb in sorted(notebooks.items(), key=lambda kv: (kv[0] != "index", kv[0]))]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if (REPO / "images").is_dir(): shutil.copytree(REPO / "images", out / "images")
    exporter, written = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True), []
    for stem, _ in pages:
        nb = notebooks[stem]
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(_nav(pages, stem)))
        html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb) or stem}})
        page = out / f"{stem}.html"
        page.write_text(html.replace('src="../images/', 'src="images/'))
        written.append(page)
    return written


def figures(page: Path) -> int:
    "Images embedded in a page (the saved outputs of plotting cells)."
    return len(IMG.findall(page.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "_docs")
    args = parser.parse_args()
    for page in build(args.out): print(f"{page.relative_to(REPO)}: {figures(page)} figures")


if __name__ == "__main__":
    main()
