"""Sphinx configuration for the nes_asktell documentation."""

from __future__ import annotations

import nes_asktell

project = "nes_asktell"
author = "nes_asktell developers"
release = nes_asktell.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
autodoc_typehints = "none"
intersphinx_mapping: dict[str, tuple[str, None]] = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
suppress_warnings = ["ref.citation"]
