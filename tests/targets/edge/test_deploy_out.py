"""`kit deploy edge --out DIR`: a non-empty folder is refused unless --force, and even then
only the files deploy writes are replaced."""

from __future__ import annotations

import pytest

from conftest import tiny_edge_pipeline
from kit.cli import main


def test_a_non_empty_out_folder_is_refused_with_exit_2_and_left_alone(project, capsys):
    out = project.root / "site"
    out.mkdir()
    (out / "index.html").write_text("mine")
    assert main(["deploy", "edge", "any-model", "--alias", "champion", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: the folder exists and is not empty" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["index.html"] and (out / "index.html").read_text() == "mine"


@pytest.mark.e2e
def test_force_replaces_only_what_deploy_writes(project, capsys):
    done = project.kit("run", str(tiny_edge_pipeline(project)))
    assert done.returncode == 0, done.stderr
    out = project.root / "site"
    (out / "assets").mkdir(parents=True)
    (out / "index.html").write_text("mine")
    (out / "assets" / "logo.svg").write_text("<svg/>")
    (out / "worker.js").write_text("an old worker")
    assert main(["deploy", "edge", "tiny-model", "--alias", "champion", "--out", str(out), "--force"]) == 0, \
        capsys.readouterr().err
    assert (out / "index.html").read_text() == "mine" and (out / "assets" / "logo.svg").read_text() == "<svg/>"
    assert "an old worker" not in (out / "worker.js").read_text()
    assert {p.name for p in out.iterdir()} == {"index.html", "assets", "worker.js", "manifest.json", "README.md", "bundle"}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".site.")]  # no staging folder left
    # a second deploy into its own output is refused without --force, allowed with it
    assert main(["deploy", "edge", "tiny-model", "--alias", "champion", "--out", str(out)]) == 2
    assert main(["deploy", "edge", "tiny-model", "--alias", "champion", "--out", str(out), "--force"]) == 0
    assert (out / "index.html").read_text() == "mine"
