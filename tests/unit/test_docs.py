"""The manual builds clean and the README stays a landing page.

Sphinx builds docs/ nitpicky with warnings as errors, so a broken reference, a missing
picture or a page left out of the table of contents fails the suite. The README is the
package's description too: it must render with docutils alone, start with the two commands
that install guacbridge and run the demo or the tests, and stay short (the rest is in docs/).
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tarfile

import docutils.core
import docutils.nodes
import docutils.utils

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.rst"
DEMO = "bash deploy/install.sh && .venv/bin/guacbridge demo"
TESTS = "bash deploy/install.sh --test && .venv/bin/python -m pytest tests"


def sphinx_build(source: pathlib.Path, out: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """The build CI runs: nitpicky (-n), every warning an error (-W), all of them reported."""
    return subprocess.run([sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q",
                           "-b", "html", str(source), str(out)],
                          capture_output=True, text=True, timeout=300)


def readme_doctree(text: str) -> docutils.nodes.document:
    """The README parsed by docutils alone, as a package index renders it; any warning
    (a Sphinx-only role or directive, a broken link target) is an error."""
    return docutils.core.publish_doctree(
        text, source_path=str(README),
        settings_overrides={"halt_level": docutils.utils.Reporter.WARNING_LEVEL,
                            "report_level": docutils.utils.Reporter.WARNING_LEVEL})


def test_the_manual_builds_without_a_warning(tmp_path):
    result = sphinx_build(ROOT / "docs", tmp_path / "html")
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr}{result.stdout}"
    pages = {p.name for p in (tmp_path / "html").glob("*.html")}
    assert {"index.html", "api.html", "configuration.html", "security.html",
            "operations.html", "development.html"} <= pages
    images = {p.name for p in (tmp_path / "html" / "_images").glob("*.png")}
    assert {"menu.png", "sharing.png", "recording-player.png", "results.png"} <= images


def test_a_broken_reference_fails_the_build(tmp_path):
    """The check above would be worth nothing if Sphinx let a dangling reference through."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text((ROOT / "docs" / "conf.py").read_text())
    (docs / "index.rst").write_text("Index\n=====\n\nSee :ref:`no-such-section`.\n")
    result = sphinx_build(docs, tmp_path / "html")
    assert result.returncode != 0
    assert "no-such-section" in result.stderr


def test_the_readme_starts_with_the_two_commands():
    doctree = readme_doctree(README.read_text(encoding="utf-8"))
    first_section = doctree.next_node(docutils.nodes.section)
    blocks = list(doctree.findall(docutils.nodes.literal_block))
    assert blocks, "the README has no code block"
    first = blocks[0]
    assert first_section is None or first.line < first_section.line, \
        "the README's first code block must come before its first section"
    commands = [line.strip() for line in first.astext().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands == [DEMO, TESTS]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TESTS in [line.strip() for line in ci]


def test_the_readme_is_a_short_landing_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.rst has {len(lines)} lines; move the detail to docs/"
    for page in ("api", "configuration", "security", "operations", "development"):
        assert f"<docs/{page}.rst>`_" in README.read_text(encoding="utf-8")
        assert (ROOT / "docs" / f"{page}.rst").is_file()


def test_the_sdist_carries_the_manual_and_it_builds_there(tmp_path):
    """MANIFEST.in ships docs/ with what it includes (the README, the pictures). Built from a
    clean copy: setuptools would otherwise add whatever an old egg-info listed."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
        "var", "build", "dist", "artifacts", "*.so"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(dist), str(checkout)], check=True, capture_output=True, timeout=300)
    sdist = next(dist.glob("guacbridge-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "src")        # our own sdist, just built
    tree = next((tmp_path / "src").iterdir())
    for part in ("docs/index.rst", "README.rst", "html/screenshots/menu.png",
                 "bench/results.png"):
        assert (tree / part).exists(), f"the sdist lacks {part}"
    result = sphinx_build(tree / "docs", tmp_path / "html")
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr}{result.stdout}"
