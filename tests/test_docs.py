"""The README a newcomer reads: short, its two commands as the CI runs them, and every link in it and in docs/
pointing at a file (and a heading) that exists. Its Python block is run by tests/test_python_api.py."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page):
    return {slug(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), re.M)}


def links(page):
    """(target file, anchor or None) of each relative Markdown link of `page`."""
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        found.append(((page.parent / path).resolve() if path else page, anchor or None))
    return found


def test_readme_is_short_and_states_the_set_up_and_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    commands = re.findall(r"^(make \w+)", text, re.M)
    assert {"make setup", "make benchmark", "make test"} <= set(commands)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_link_of_the_readme_and_docs_resolves():
    assert len(PAGES) > 3
    broken = []
    for page in PAGES:
        for target, anchor in links(page):
            if not target.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                broken.append(f"{page.name}: {target.name}#{anchor}")
    assert not broken


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [missing](nowhere.md) [bad anchor](#nope)\n")
    found = links(page)
    assert [(t.name, a) for t, a in found] == [("page.md", "title"), ("nowhere.md", None), ("page.md", "nope")]
    assert "nope" not in anchors(page) and "title" in anchors(page)
