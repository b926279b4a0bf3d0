"""tools/run_all_notebooks.py: executed copies in another folder, per-notebook result, sources untouched."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_all_notebooks", ROOT / "tools" / "run_all_notebooks.py")
run_all = importlib.util.module_from_spec(spec)
sys.modules["run_all_notebooks"] = run_all
spec.loader.exec_module(run_all)


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path.read_bytes()


def test_runs_each_notebook_into_the_output_folder_and_reports_failures(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    sources = tmp_path / "notebooks"
    sources.mkdir()
    good = write_notebook(sources / "01_good.ipynb", "import os\nfrom pathlib import Path\n"
                          "print(Path.cwd().name, os.environ.get('MPLBACKEND'))")
    bad = write_notebook(sources / "02_bad.ipynb", "raise ValueError('broken lesson')")
    out = tmp_path / "executed"

    status = run_all.main([str(sources / "01_good.ipynb"), str(sources / "02_bad.ipynb"),
                           "--output-dir", str(out)])

    printed = capsys.readouterr().out
    assert status == 1
    assert "01_good.ipynb" in printed and " ok " in printed
    assert "02_bad.ipynb" in printed and "FAILED" in printed and "broken lesson" in printed
    assert "1 of 2 notebooks passed" in printed and "MiB" in printed
    executed = nbformat.read(out / "01_good.ipynb", as_version=4)
    # ran from the notebook's own folder, with the inline backend even when the shell set MPLBACKEND
    assert executed.cells[0].outputs[0]["text"] == "notebooks module://matplotlib_inline.backend_inline\n"
    assert nbformat.read(out / "02_bad.ipynb", as_version=4).cells[0].outputs[0]["output_type"] == "error"
    assert (sources / "01_good.ipynb").read_bytes() == good and (sources / "02_bad.ipynb").read_bytes() == bad
    assert (out / ".gitignore").read_text() == "*\n"


def test_refuses_to_overwrite_the_sources(tmp_path, capsys):
    write_notebook(tmp_path / "01_x.ipynb", "1")
    with pytest.raises(SystemExit) as exit:
        run_all.main([str(tmp_path / "01_x.ipynb"), "--output-dir", str(tmp_path)])
    assert exit.value.code == 2
    assert "holds the source notebooks" in capsys.readouterr().err


def test_a_kernel_above_the_memory_budget_fails_the_run(tmp_path, capsys):
    # 300 MiB of touched memory against a 200 MiB budget; a plain kernel (about 60-100 MiB) stays under it
    write_notebook(tmp_path / "01_big.ipynb", "block = bytearray(300 * 2**20)")
    write_notebook(tmp_path / "02_small.ipynb", "x = 1")
    status = run_all.main([str(tmp_path / "01_big.ipynb"), str(tmp_path / "02_small.ipynb"),
                           "--output-dir", str(tmp_path / "out"), "--memory-budget", "200"])
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("0")}
    assert status == 1
    assert "FAILED" in rows["01_big.ipynb"] and "above the 200 MiB memory budget" in rows["01_big.ipynb"]
    assert " ok " in rows["02_small.ipynb"]
    peak = float(rows["01_big.ipynb"].split("MiB")[0].split()[-1].replace(",", ""))
    assert peak > 300
