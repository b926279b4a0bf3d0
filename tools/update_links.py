"""(Re)write every Colab/Binder badge and link from the one repository address in pyproject.toml.

The address is ``Repository`` under ``[project.urls]``: ``https://github.com/OWNER/REPO/tree/BRANCH``. A fork changes
that line and runs ``python tools/update_links.py``. What it writes, each found by a marker, so that running it again
changes nothing:

- in every ``notebooks/NN_*.ipynb``: a badge cell at the top (Colab + Binder) and right after it the Colab setup
  cell (on Colab only: install the package from the repository, and turn on Colab's custom widget manager only
  under ipywidgets 8, since Colab's own 7.x needs none; elsewhere it does nothing and prints nothing). Both carry ``"metalearn_lite": {"role": ...}`` in their cell metadata. Other cells
  keep their sources, outputs and metadata; execution counts are renumbered 1..n in order (so the setup cell's
  count fits), and the ``execution_count`` of execute_result outputs follows its cell's count.
- in README.md: a Binder badge between ``<!-- launch-badges:start -->``/``<!-- launch-badges:end -->`` under the
  title, and the notebook index between ``<!-- notebook-index:start -->``/``<!-- notebook-index:end -->`` (titles
  and descriptions kept; a Colab and a Binder badge per row; new notebooks added with their first heading); the
  set-up's ``git clone`` line follows the repository too.
- for a class on its own JupyterHub: when ``[tool.metalearn-lite] jupyterhub = "https://HUB"`` is set in
  pyproject.toml, each index row also gets an nbgitpuller link, which clones (or updates) the repository into the
  student's hub home and opens the notebook in JupyterLab. Unset (the default), no hub links are written.

Usage: ``python tools/update_links.py [--check] [NOTEBOOK ...]`` (``--check``: change nothing, exit 1 when a file is
out of date; naming notebooks rewrites only those, the README index always lists all).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from urllib.parse import urlencode
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
MARKER_KEY = "metalearn_lite"
BADGES_ROLE, SETUP_ROLE = "launch-badges", "colab-setup"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
INDEX_START, INDEX_END = "<!-- notebook-index:start -->", "<!-- notebook-index:end -->"
TOP_START, TOP_END = "<!-- launch-badges:start -->", "<!-- launch-badges:end -->"
INDEX_HEADER = ["| # | notebook | what you learn | open |", "|---|---|---|---|"]


@dataclass(frozen=True)
class Repository:
    """Where the suite lives publicly: GitHub ``owner/name`` and the branch that links point at."""

    owner: str
    name: str
    branch: str

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    def colab_url(self, notebook: str) -> str:
        """Open ``notebooks/<notebook>`` of the branch in Colab."""
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.branch}/notebooks/{notebook}"

    def binder_url(self, notebook: Optional[str] = None) -> str:
        """JupyterLab on Binder, opened at ``notebooks/<notebook>`` (or the notebooks folder)."""
        target = f"notebooks/{notebook}" if notebook else "notebooks"
        return f"https://mybinder.org/v2/gh/{self.slug}/{self.branch}?urlpath=lab/tree/{target}"

    def nbgitpuller_url(self, hub: str, notebook: str) -> str:
        """Open ``notebooks/<notebook>`` on the JupyterHub at ``hub``, after nbgitpuller cloned or updated the
        repository into the folder named after it (nbgitpuller's default target)."""
        query = urlencode({"repo": f"https://github.com/{self.slug}", "branch": self.branch,
                           "urlpath": f"lab/tree/{self.name}/notebooks/{notebook}"})
        return f"{hub}/hub/user-redirect/git-pull?{query}"

    def pip_target(self) -> str:
        """What ``pip install`` gets on Colab: the package at the branch."""
        return f"metalearn-lite @ git+https://github.com/{self.slug}@{self.branch}"


def read_repository(pyproject: Path = ROOT / "pyproject.toml") -> Repository:
    """Parse ``[project.urls] Repository = "https://github.com/OWNER/REPO/tree/BRANCH"``."""
    urls = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("urls", {})
    url = urls.get("Repository", "")
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)/tree/(\S+?)/?", url)
    if not match:
        raise SystemExit(f"{pyproject}: [project.urls] Repository must look like "
                         f"https://github.com/OWNER/REPO/tree/BRANCH (got {url!r})")
    return Repository(*match.groups())


def read_hub(pyproject: Path = ROOT / "pyproject.toml") -> Optional[str]:
    """The course's JupyterHub address from ``[tool.metalearn-lite] jupyterhub``, or None when it is not set."""
    hub = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("metalearn-lite", {})
    hub = hub.get("jupyterhub", "")
    if not hub:
        return None
    if not re.fullmatch(r"https?://[\w.-]+(:\d+)?(/[\w./-]*)?", hub):
        raise SystemExit(f"{pyproject}: [tool.metalearn-lite] jupyterhub must be the hub's address, like "
                         f"https://hub.example.edu (got {hub!r})")
    return hub.rstrip("/")


# ----------------------------------------------------------------------------------------------------- notebooks

def badges_markdown(repo: Repository, notebook: str) -> str:
    return (f"[![Open In Colab]({COLAB_BADGE})]({repo.colab_url(notebook)}) "
            f"[![Binder]({BINDER_BADGE})]({repo.binder_url(notebook)})")


def setup_source(repo: Repository) -> str:
    # Colab's own ipywidgets 7 draws the core widgets the explorers use; its custom widget manager (needed only for
    # ipywidgets 8) has display bugs with the Output widget the explorers draw through, so it is only turned on for 8.
    return "\n".join([
        "# Colab only: install this course's package (and, with ipywidgets 8, Colab's widget manager). Elsewhere: nothing.",
        "import sys",
        'if "google.colab" in sys.modules:',
        f'    %pip install --quiet "{repo.pip_target()}"',
        "    import ipywidgets",
        '    if int(ipywidgets.__version__.split(".")[0]) >= 8:',
        "        from google.colab import output",
        "        output.enable_custom_widget_manager()",
    ])


def role_of(cell) -> Optional[str]:
    return cell.get("metadata", {}).get(MARKER_KEY, {}).get("role")


def update_notebook(nb, repo: Repository, notebook: str):
    """Return a copy of ``nb`` with the two launch cells (re)written at the top and counts renumbered."""
    nb = copy.deepcopy(nb)
    old = {role_of(cell): cell for cell in nb.cells if role_of(cell) in (BADGES_ROLE, SETUP_ROLE)}
    cells = [cell for cell in nb.cells if role_of(cell) not in (BADGES_ROLE, SETUP_ROLE)]

    badges = nbformat.v4.new_markdown_cell(badges_markdown(repo, notebook),
                                           metadata={MARKER_KEY: {"role": BADGES_ROLE}})
    setup = nbformat.v4.new_code_cell(setup_source(repo), metadata={MARKER_KEY: {"role": SETUP_ROLE}})
    for cell, role in ((badges, BADGES_ROLE), (setup, SETUP_ROLE)):
        cell["id"] = old[role].get("id", role) if role in old else role
    nb.cells = [badges, setup] + cells
    _renumber(nb)
    return nb


def _renumber(nb) -> None:
    """Execution counts 1..n in cell order when the notebook was executed (the setup cell included)."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not any(cell.get("execution_count") is not None for cell in code if role_of(cell) != SETUP_ROLE):
        return  # an unexecuted notebook stays unexecuted
    count = 0
    for cell in code:
        if cell.get("execution_count") is None and role_of(cell) != SETUP_ROLE:
            continue
        count += 1
        cell["execution_count"] = count
        for output in cell.get("outputs", []):
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count


def notebook_paths(root: Path = ROOT) -> List[Path]:
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


# -------------------------------------------------------------------------------------------------------- README

def first_heading(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and role_of(cell) is None:
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return re.sub(r"^\d+\.\s*", "", line[2:].strip())
    return path.stem


def update_readme(text: str, repo: Repository, notebooks: List[Path], hub: Optional[str] = None) -> str:
    """Return the README with the top Binder badge and the notebook index rewritten (hub links when ``hub``)."""
    text = _replace_between(text, INDEX_START, INDEX_END, _index(text, repo, notebooks, hub))
    # the set-up's first line: clone this repository (and branch, when it is not the default one)
    branch = "" if repo.branch in ("main", "master") else f" --branch {repo.branch}"
    text = re.sub(r"git clone( --branch \S+)? https://github\.com/\S+?\.git && cd \S+",
                  f"git clone{branch} https://github.com/{repo.slug}.git && cd {repo.name}", text)
    top = f"[![Binder]({BINDER_BADGE})]({repo.binder_url()})"
    if TOP_START in text:
        return _replace_between(text, TOP_START, TOP_END, top)
    title, _, rest = text.partition("\n")  # first time: put the badge right under the title line
    return f"{title}\n\n{TOP_START}\n{top}\n{TOP_END}\n{rest}"


def _index(text: str, repo: Repository, notebooks: List[Path], hub: Optional[str]) -> str:
    rows: Dict[str, Tuple[str, str, str]] = {}  # notebook file -> (number, title, description)
    for line in _between(text, INDEX_START, INDEX_END).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        link = re.fullmatch(r"\[(.+)\]\(notebooks/([^)]+\.ipynb)\)", cells[1]) if len(cells) >= 3 else None
        if link:
            rows[link.group(2)] = (cells[0], link.group(1), cells[2])
    for path in notebooks:
        if path.name not in rows:
            rows[path.name] = (str(int(path.name[:2])), first_heading(path), "")
    lines = list(INDEX_HEADER)
    for name, (number, title, description) in sorted(rows.items()):
        links = badges_markdown(repo, name) + (f" [JupyterHub]({repo.nbgitpuller_url(hub, name)})" if hub else "")
        lines.append(f"| {number} | [{title}](notebooks/{name}) | {description} | {links} |")
    return "\n".join(lines)


def _between(text: str, start: str, end: str) -> str:
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"README.md must contain {start} and then {end}, once each")
    return text[text.index(start) + len(start):text.index(end)]


def _replace_between(text: str, start: str, end: str, body: str) -> str:
    _between(text, start, end)
    return text[:text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end):]


# ----------------------------------------------------------------------------------------------------------- main

def update_all(root: Path = ROOT, check: bool = False, only: Optional[List[Path]] = None) -> List[Path]:
    """Update (or with ``check``, only compare) the notebooks and README.md; return the files out of date.

    ``only``: rewrite just these notebooks (the README index still lists every notebook).
    """
    repo = read_repository(root / "pyproject.toml")
    changed = []
    notebooks = notebook_paths(root)
    selected = notebooks if only is None else [root / "notebooks" / Path(path).name for path in only]
    for path in selected:
        before = path.read_text(encoding="utf-8")
        nb = nbformat.reads(before, as_version=4)
        after = nbformat.writes(update_notebook(nb, repo, path.name)) + "\n"
        if after != before:
            changed.append(path)
            if not check:
                path.write_text(after, encoding="utf-8")
    readme = root / "README.md"
    before = readme.read_text(encoding="utf-8")
    after = update_readme(before, repo, notebooks, read_hub(root / "pyproject.toml"))
    if after != before:
        changed.append(readme)
        if not check:
            readme.write_text(after, encoding="utf-8")
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="only these notebooks (default: all NN_*.ipynb)")
    args = parser.parse_args(argv)
    changed = update_all(args.root, check=args.check, only=args.notebooks or None)
    verb = "out of date" if args.check else "updated"
    for path in changed:
        print(f"{verb}: {path.relative_to(args.root)}")
    if not changed:
        print("all links up to date")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
