"""The README and docs stand alone in a clone: short README, every relative link resolves, no path
outside the repository."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "config" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_short_and_starts_with_the_quick_start_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "pip install torch==2.13.0 && pip install -e . && snakemake --cores 8 --resources gpu=1" in text
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q' in text


def test_links_resolve_and_nothing_points_outside_the_repository():
    for page in PAGES:
        text = page.read_text()
        assert "../shared" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if "://" in target:
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.exists(), f"{page.relative_to(REPO)} links to missing {target}"
            assert REPO in resolved.parents or resolved == REPO, f"{page} links outside: {target}"
