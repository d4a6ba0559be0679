"""Where the files that ship beside the code are: ``html/`` (the console page and
guacamole-common-js) and ``sql/``.

An installed wheel carries them inside the package (``guacbridge/_data/``, put there by
setup.py's build step, which also runs npm). A source checkout (editable install, tests) uses
the top-level folders, with guacamole-common-js from ``html/node_modules``.
"""
from __future__ import annotations

import pathlib

_PACKAGE = pathlib.Path(__file__).resolve().parent
_INSTALLED = _PACKAGE / "_data"
_CHECKOUT = _PACKAGE.parent

GUACAMOLE_JS = "guacamole-common.js"
_NPM_JS = pathlib.Path("node_modules/guacamole-common-js/dist/esm/guacamole-common.js")


def folder(name: str) -> pathlib.Path:
    """``html`` or ``sql``, wherever this copy of guacbridge keeps it."""
    installed = _INSTALLED / name
    return installed if installed.is_dir() else _CHECKOUT / name


def guacamole_js() -> pathlib.Path:
    """The ES module build of guacamole-common-js; FileNotFoundError names the fix."""
    html = folder("html")
    for candidate in (html / "vendor" / GUACAMOLE_JS, html / _NPM_JS):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"guacamole-common-js is not installed: run `npm ci` in {html} (deploy/install.sh does)")


def sql(name: str) -> str:
    return (folder("sql") / name).read_text(encoding="utf-8")
