"""The documentation site: its generated pages match the code, and it builds strict and self-contained.

``docs/reference/`` is written by ``python -m tools.docs`` from the Typer app, the services'
OpenAPI and AsyncAPI documents and the settings classes; a page that no longer matches them is
stale. The build is MkDocs's own, in strict mode: a broken link or anchor, or a page left out of
the navigation, fails it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.docs.pages import generated, stale, write
from tools.docs.settings_reference import undescribed, unused_notes

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with: .venv/bin/python -m tools.docs"
# A tag that makes the browser fetch something: scripts, stylesheets, icons, images, frames.
_FETCHING = re.compile(r"<(?:script|img|iframe|link)\b[^>]*\b(?:src|href)=\"((?:https?:)?//[^\"]+)\"[^>]*>")


def test_every_generated_page_matches_the_code() -> None:
    found = stale(generated())
    assert not found, f"stale pages under docs/: {found}; {REGENERATE}"


def test_every_setting_is_described_and_every_note_is_needed() -> None:
    assert not undescribed(), f"settings without a description: {undescribed()} (add a comment above the field)"
    assert not unused_notes(), f"notes of tools/docs/setting_notes.py nothing needs any more: {unused_notes()}"


def test_the_check_names_changed_missing_and_leftover_files(tmp_path: Path) -> None:
    pages = {"reference/index.md": "# Reference\n", "reference/http/query.json": "{}\n"}
    assert write(pages, tmp_path) == sorted(pages)
    assert stale(pages, tmp_path) == []

    (tmp_path / "reference/index.md").write_text("# Edited by hand\n")
    (tmp_path / "reference/http/query.json").unlink()
    (tmp_path / "reference/old.md").write_text("# A page nothing generates\n")
    assert stale(pages, tmp_path) == ["reference/http/query.json", "reference/index.md", "reference/old.md"]

    write(pages, tmp_path)
    assert stale(pages, tmp_path) == [] and not (tmp_path / "reference/old.md").exists()


def test_the_site_builds_strict_and_loads_nothing_from_another_host(tmp_path: Path) -> None:
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    pages = list(site.rglob("*.html"))
    assert len(pages) > 40, "the site lost pages"
    fetched = {url for page in pages for url in _FETCHING.findall(page.read_text())}
    assert not fetched, f"the site loads from other hosts: {sorted(fetched)}"
    imported = [
        css.name for css in site.rglob("*.css") if re.search(r"@import|url\((['\"]?)(https?:)?//", css.read_text())
    ]
    assert not imported, f"stylesheets that load from other hosts: {imported}"


def test_the_readme_links_only_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = [target.split("#", 1)[0] for target in re.findall(r"\]\(([^)]+)\)", readme)]
    missing = [target for target in targets if "://" not in target and not (ROOT / target).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
