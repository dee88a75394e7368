"""No file in the repository cites a document outside it: the docs state the contract themselves."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# The design card the project started from lives outside the repository.
OUTSIDE = re.compile(r"DESIGN\.md|DESIGN §|\.\./shared/|MISSION\.md|STYLE\.md")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / name for name in listed.splitlines() if not name.endswith((".lock", ".png", ".ico", ".woff2"))]
    return [path for path in paths if path.is_file()]


def citations(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}: {match.group(0)}" for match in OUTSIDE.finditer(text)]
    return found


def test_no_tracked_file_cites_a_document_outside_the_repository() -> None:
    paths = [path for path in tracked_text_files() if path != Path(__file__).resolve()]
    assert len(paths) > 100
    assert citations(paths) == []


def test_the_check_finds_a_citation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text("# the stand-ins (DESIGN §7)\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert citations([tmp_path / "a.py"]) == ["a.py: DESIGN §"]
