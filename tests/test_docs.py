"""The README and docs stand alone in a clone: short README, every relative link resolves, no path
outside the repository; each algorithm has its page; docstrings and help strings hold no measurements."""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "config" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
ALGORITHMS = ("bc", "fql", "mfql", "qc", "reinflow")  # docs/algorithms/<name>.md


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


# ---- docstrings and help strings say what and why; measurements live in docs/algorithms/*.md

DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
MEASURED = re.compile(r"\bmeasured\b", re.IGNORECASE)
# the option calls of the config machinery and the position of their help text
HELP_ARGUMENT = {"param": 1, "inherited": 3, "option": 0}


def _literal(node: ast.AST) -> str | None:
    """The text of a string literal (of an f-string: its literal parts), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def docstrings_and_help(source: str):
    """(line, what, text) of every module, class and function docstring of `source` and of every help
    string: the help text of `param(...)`, `inherited(...)`, `option(...)` and any `help=` argument."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), f"docstring of {getattr(node, 'name', 'the module')}", doc
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            values = [k.value for k in node.keywords if k.arg in ("help_text", "help")]
            if name in HELP_ARGUMENT and len(node.args) > HELP_ARGUMENT[name]:
                values.append(node.args[HELP_ARGUMENT[name]])
            for value in values:
                text = _literal(value)
                if text:
                    yield node.lineno, f"help of {name}()", text


def measurements_in(source: str) -> list[str]:
    """'line N, what: match' for each date or "measured" in the docstrings and help strings of `source`."""
    found = []
    for line, what, text in docstrings_and_help(source):
        for pattern in (DATE, MEASURED):
            found += [f"line {line}, {what}: {m.group()!r}" for m in pattern.finditer(text)]
    return found


def test_the_check_finds_dates_and_measurements():
    planted = '''"""A module, measured 2026-12-05."""

def f():
    """What f does."""

class C:
    """Measured: 1.3x."""
    x: int = param(0, f"speed {1} measured")
    y: int = inherited(Base, "y", 1, "as of 2026-11-25")
    z: dict = option("fine")

parser.add_argument("--n", help="2026-12-07")
'''
    found = measurements_in(planted)
    assert len(found) == 6, found
    assert measurements_in('"""What and why."""\nx = param(0, "what it does")\n') == []


PACKAGE_FILES = sorted((REPO / "myreinflow").rglob("*.py"))


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(REPO / "myreinflow")))
def test_docstrings_and_help_strings_hold_no_dated_measurements(path):
    """Measurements (numbers with their dates) go to docs/algorithms/*.md and the results pages, where a
    re-measurement edits one place; a docstring says what and why, a help string what an option does."""
    found = measurements_in(path.read_text())
    assert not found, f"{path.relative_to(REPO)}: " + "; ".join(found)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_has_its_page(name):
    """docs/algorithms/<name>.md: what it is, usage, logged metrics, deviations, results."""
    page = REPO / "docs" / "algorithms" / f"{name}.md"
    assert page.is_file(), f"missing {page.relative_to(REPO)}"
    headings = [
        line.lstrip("#").strip().lower() for line in page.read_text().splitlines() if line.startswith("#")
    ]
    for wanted in ("usage", "logged metrics", ("deviations", "implementation details"), "results"):
        words = (wanted,) if isinstance(wanted, str) else wanted
        assert any(w in h for h in headings for w in words), f"{page.name} has no heading with {wanted}"
