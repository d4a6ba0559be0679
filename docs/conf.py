"""Sphinx settings for guacbridge's manual: built-in theme, no extensions, nothing fetched."""

project = "guacbridge"
author = "the guacbridge authors"
release = "0.1.0"

root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
# The manual names settings, paths and commands as literals, not as Python objects; a
# reference that goes nowhere is an error (the docs test builds with -n -W).
nitpicky = True
