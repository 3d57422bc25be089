"""HTML pages of executed notebooks, rendered in the background (kit.run.render)."""

from __future__ import annotations

import pytest

from conftest import write_notebook
from kit.run.render import Renderer


def test_pages_are_rendered_beside_their_notebooks_and_handed_on_in_order(tmp_path):
    notebooks = [write_notebook(tmp_path / f"n{i}.ipynb", "x = 1", f"print('page {i}')") for i in range(3)]
    handed = []
    renderer = Renderer()
    for notebook in notebooks:
        renderer.submit(notebook, handed.append)
    renderer.finish()
    renderer.close()
    assert handed == [tmp_path / f"n{i}.html" for i in range(3)]
    assert "page 2" in handed[2].read_text() and "page 1" not in handed[2].read_text()


def test_a_notebook_that_cannot_be_rendered_gives_no_page_and_no_error(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    handed = []
    renderer = Renderer()
    renderer.submit(broken, handed.append)
    renderer.finish()
    renderer.close()
    assert handed == [] and not (tmp_path / "broken.html").exists()


def test_an_error_logging_a_page_is_raised_when_the_run_waits_for_its_pages(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", "x = 1", "x")

    def fail(page):
        raise OSError(f"store unreachable while logging {page.name}")

    renderer = Renderer()
    renderer.submit(notebook, fail)
    with pytest.raises(OSError, match="n.html"):
        renderer.finish()
    renderer.close()
