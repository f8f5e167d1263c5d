"""The repository stands on its own: every link in the README and docs/ points at a file inside it, and the
sample data the tests read is in tests/data/ (issue 9, item 13)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "tests" / "data" / "README.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_points_inside_the_repository(document):
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"


def test_readme_sends_partners_to_the_contract_in_the_repository():
    assert "[`docs/api.md`](docs/api.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_sample_files_and_their_answer_sheet_are_in_the_repository():
    data = ROOT / "tests" / "data"
    for name in ("members_sample_utf8bom.csv", "members_sample_gb18030.csv", "members_sample_answers.json"):
        assert (data / name).stat().st_size > 10_000
    assert (data / "make_member_files.py").exists()
