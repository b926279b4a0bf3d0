"""Every notebook opens on Colab and Binder from this repository, and tools/update_links.py keeps it so."""

import importlib.util
import re
from urllib.parse import parse_qs, urlsplit
import shutil
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("update_links", ROOT / "tools" / "update_links.py")
update_links = importlib.util.module_from_spec(spec)
sys.modules["update_links"] = update_links  # dataclasses look their module up there
spec.loader.exec_module(update_links)

REPO = update_links.read_repository()
NOTEBOOKS = update_links.notebook_paths()


def launch_cells(path):
    nb = nbformat.read(path, as_version=4)
    return nb, nb.cells[0], nb.cells[1]


def test_the_repository_is_named_in_one_line():
    assert (REPO.owner, REPO.name, REPO.branch) == ("metalearn-lite", "metalearn-lite", "main")
    text = (ROOT / "pyproject.toml").read_text()
    assert text.count(f"github.com/{REPO.slug}") == 1


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_colab_link_to_its_own_path_in_this_repository(path):
    _, badges, _ = launch_cells(path)
    assert badges.cell_type == "markdown" and update_links.role_of(badges) == "launch-badges", \
        f"{path.name}: no badge cell at the top; run python tools/update_links.py"
    colab = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", badges.source)
    assert colab == [f"https://colab.research.google.com/github/{REPO.slug}/blob/{REPO.branch}/notebooks/{path.name}"]
    relative = colab[0].split(f"/blob/{REPO.branch}/", 1)[1]
    assert (ROOT / relative).resolve() == path.resolve()
    binder = re.findall(r"\]\((https://mybinder\.org/v2/[^)]+)\)", badges.source)
    assert binder == [f"https://mybinder.org/v2/gh/{REPO.slug}/{REPO.branch}?urlpath=lab/tree/notebooks/{path.name}"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_follows_the_badges_prints_nothing_and_keeps_counts_in_order(path):
    nb, _, setup = launch_cells(path)
    assert setup.cell_type == "code" and update_links.role_of(setup) == "colab-setup"
    assert setup.source == update_links.setup_source(REPO)
    assert setup.outputs == []
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == "code"]
    executed = [count for count in counts if count is not None]
    assert executed == sorted(executed) and len(set(executed)) == len(executed)


def run_setup_cell(source, monkeypatch, capsys, on_colab, ipywidgets_version="7.7.1"):
    """Run the setup cell's IPython source under a fake Colab whose ipywidgets has ``ipywidgets_version`` (Colab ships
    7.7.1); return (stdout, pip magics called, widget manager turned on)."""
    magics, enabled = [], []

    class Shell:
        def run_line_magic(self, name, line):
            magics.append((name, line))

    if on_colab:
        output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(True))
        colab = types.ModuleType("google.colab")
        colab.output = output
        google = types.ModuleType("google")
        google.colab = colab
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__=ipywidgets_version))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "<setup cell>", "exec"), {"get_ipython": Shell})
    return capsys.readouterr().out, magics, enabled


def test_setup_cell_does_nothing_off_colab(monkeypatch, capsys):
    out, magics, enabled = run_setup_cell(update_links.setup_source(REPO), monkeypatch, capsys, on_colab=False)
    assert (out, magics, enabled) == ("", [], [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_on_colab_installs_the_package_and_keeps_colabs_own_widgets(path, monkeypatch, capsys):
    _, _, setup = launch_cells(path)
    _, magics, enabled = run_setup_cell(setup.source, monkeypatch, capsys, on_colab=True)
    assert magics == [("pip", f'install --quiet "metalearn-lite @ git+https://github.com/{REPO.slug}@{REPO.branch}"')]
    assert enabled == []   # ipywidgets 7.7.1 draws core widgets itself; the custom manager breaks Output widgets


def test_setup_cell_turns_on_colabs_widget_manager_only_for_ipywidgets_8(monkeypatch, capsys):
    _, _, enabled = run_setup_cell(update_links.setup_source(REPO), monkeypatch, capsys, on_colab=True,
                                   ipywidgets_version="8.1.5")
    assert enabled == [True]


def test_readme_has_the_binder_badge_and_launch_links_for_every_notebook():
    readme = (ROOT / "README.md").read_text()
    assert f"]({REPO.binder_url()})" in readme.split("\n## ", 1)[0], "Binder badge under the title"
    index = readme.split(update_links.INDEX_START)[1].split(update_links.INDEX_END)[0]
    for path in NOTEBOOKS:
        assert f"]({REPO.colab_url(path.name)})" in index
        assert f"]({REPO.binder_url(path.name)})" in index


def test_committed_files_are_up_to_date():
    assert update_links.update_all(ROOT, check=True) == [], "run python tools/update_links.py"


def copy_repo(tmp_path, repository_line=None):
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    pyproject = (ROOT / "pyproject.toml").read_text()
    if repository_line:
        pyproject = re.sub(r'(?m)^Repository = ".*"$', repository_line, pyproject)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def test_a_fork_changes_one_line_and_every_link_follows_running_twice_changes_nothing(tmp_path):
    root = copy_repo(tmp_path, 'Repository = "https://github.com/teacher/ml-course/tree/spring"')
    first = update_links.update_all(root)
    assert root / "README.md" in first
    snapshot = {path: path.read_bytes() for path in [root / "README.md", *sorted(root.glob("notebooks/*"))]}
    assert update_links.update_all(root) == []
    assert {path: path.read_bytes() for path in snapshot} == snapshot
    for path in snapshot:
        text = path.read_text()
        assert f"github.com/{REPO.slug}" not in text and f"/gh/{REPO.slug}/" not in text, path.name
    assert "git clone --branch spring https://github.com/teacher/ml-course.git && cd ml-course" in \
        (root / "README.md").read_text()
    for path in sorted(root.glob("notebooks/*.ipynb")):
        badge = nbformat.read(path, as_version=4).cells[0].source
        assert f"colab.research.google.com/github/teacher/ml-course/blob/spring/notebooks/{path.name}" in badge


def test_a_new_notebook_gets_its_cells_and_keeps_everything_else(tmp_path):
    root = copy_repo(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 9. A new lesson\n\nText."),
                nbformat.v4.new_code_cell("x = 1\nx", execution_count=4,
                                          outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "1"},
                                                                          execution_count=4)],
                                          metadata={"tags": ["keep-me"]})]
    nbformat.write(nb, root / "notebooks" / "09_new_lesson.ipynb")
    update_links.update_all(root)
    cells = nbformat.read(root / "notebooks" / "09_new_lesson.ipynb", as_version=4).cells
    assert [update_links.role_of(cell) for cell in cells] == ["launch-badges", "colab-setup", None, None]
    assert cells[1].execution_count == 1
    assert cells[3].execution_count == 2 and cells[3].outputs[0]["execution_count"] == 2
    assert cells[3].outputs[0]["data"] == {"text/plain": "1"} and cells[3].metadata == {"tags": ["keep-me"]}
    assert cells[2].source == "# 9. A new lesson\n\nText."
    readme = (root / "README.md").read_text()
    assert "| 9 | [A new lesson](notebooks/09_new_lesson.ipynb) |" in readme
    assert update_links.update_all(root) == []


def test_a_hub_address_given_once_adds_an_nbgitpuller_link_per_notebook(tmp_path):
    root = copy_repo(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^jupyterhub = ".*"$', 'jupyterhub = "https://hub.example.edu/"',
                                pyproject.read_text()))
    assert root / "README.md" in update_links.update_all(root)
    assert not any("git-pull" in path.read_text() for path in root.glob("notebooks/*.ipynb"))  # README only
    index = (root / "README.md").read_text().split(update_links.INDEX_START)[1].split(update_links.INDEX_END)[0]
    links = re.findall(r"\[JupyterHub\]\(([^)]+)\)", index)
    assert len(links) == len(NOTEBOOKS)
    for link, path in zip(links, NOTEBOOKS):
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "hub.example.edu", "/hub/user-redirect/git-pull")
        assert parse_qs(parts.query) == {"repo": [f"https://github.com/{REPO.slug}"], "branch": [REPO.branch],
                                         "urlpath": [f"lab/tree/{REPO.name}/notebooks/{path.name}"]}
    assert update_links.update_all(root) == []


def test_no_hub_address_no_hub_links_and_a_bad_one_is_named(tmp_path):
    assert update_links.read_hub() is None and "JupyterHub](" not in (ROOT / "README.md").read_text()
    root = copy_repo(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^jupyterhub = ".*"$', 'jupyterhub = "hub.example.edu"', pyproject.read_text()))
    with pytest.raises(SystemExit, match=r"jupyterhub must be the hub's address.*'hub.example.edu'"):
        update_links.update_all(root)
