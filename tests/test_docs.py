"""Every link in the user documentation resolves inside the repository.

README.md, docs/*.md and examples/**/*.md are parsed for markdown links (inline
``[text](target)``, images, reference definitions ``[name]: target``) and for repository paths
written in backticks (``deploy/rbac.yaml``). A relative target must exist in the repository (a
file git tracks, or a new one it does not ignore), must not climb out of it with ``..``, and a
``#anchor`` must name a heading of the target markdown file, slugged the way GitHub slugs it.
External URLs (``https://…``) are not fetched.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# A path in backticks: words joined by slashes, no spaces or placeholders.
PATH_IN_BACKTICKS = re.compile(r"^[\w.@+-]+(?:/[\w.@+*-]+)+/?$")


@dataclass(frozen=True)
class Problem:
    document: str
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.target}: {self.reason}"


def repository_files(root: Path) -> set[str]:
    """Files in the repository: tracked, or new and not ignored (git), else everything on disk."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        files = {f for f in listed.split("\0") if f and (root / f).exists()}
    except (OSError, subprocess.CalledProcessError):
        files = set()
    if not files:
        files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return files


def ignored(root: Path, path: str) -> bool:
    """Git ignores the path: something the tools make (a cache, .venv), named in prose."""
    try:
        return (
            subprocess.run(
                ["git", "check-ignore", "--no-index", "-q", path],
                cwd=root,
                capture_output=True,
                timeout=60,
            ).returncode
            == 0
        )
    except OSError:
        return False


def directories(files: set[str]) -> set[str]:
    found = {""}
    for f in files:
        parts = PurePosixPath(f).parts
        for i in range(1, len(parts)):
            found.add("/".join(parts[:i]))
    return found


def documents(root: Path, files: set[str]) -> list[str]:
    return sorted(
        f
        for f in files
        if f == "README.md"
        or (f.startswith("docs/") and f.endswith(".md") and f.count("/") == 1)
        or (f.startswith("examples/") and f.endswith(".md"))
    )


def prose_lines(text: str) -> list[str]:
    """The document's lines with fenced code blocks blanked (their line numbers kept)."""
    lines, fence = [], ""
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1) == fence:
                fence = ""
            lines.append("")
        elif match:
            fence = match.group(1)
            lines.append("")
        else:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped
    (letters, digits, ``_`` and ``-`` kept), each space a ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    for name in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
        found.add(name)
    return found


def links(text: str) -> list[tuple[int, str, bool]]:
    """(line, target, written in backticks) of every link and backticked repository path."""
    prose = "\n".join(prose_lines(text))
    found: list[tuple[int, str, bool]] = []
    spans: list[tuple[int, str]] = []

    def blank(match: re.Match[str]) -> str:
        spans.append((match.start(), match.group(2).strip()))
        return match.group(1) + re.sub(r"[^\n]", "x", match.group(2)) + match.group(1)

    without_code = CODE_SPAN.sub(blank, prose)

    def line_of(offset: int) -> int:
        return prose.count("\n", 0, offset) + 1

    for match in INLINE_LINK.finditer(without_code):
        found.append((line_of(match.start()), match.group(1), False))
    for match in REFERENCE_DEFINITION.finditer(without_code):
        found.append((line_of(match.start()), match.group(1), False))
    for offset, code in spans:
        if PATH_IN_BACKTICKS.match(code):
            found.append((line_of(offset), code, True))
    return found


def check(root: Path, files: set[str], document: str) -> list[Problem]:
    dirs = directories(files)
    here = PurePosixPath(document).parent
    text = (root / document).read_text(encoding="utf-8")
    problems: list[Problem] = []
    heading_cache: dict[str, set[str]] = {}

    def headings(path: str) -> set[str]:
        if path not in heading_cache:
            heading_cache[path] = anchors((root / path).read_text(encoding="utf-8"))
        return heading_cache[path]

    for line, target, in_backticks in links(text):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue  # an external URL, a mailto:
        path, _, anchor = target.partition("#")
        if in_backticks:
            # Backticked paths are written from the repository's root; only those that start
            # in one of its top-level folders are taken for paths (`kserve/<engine>-<digest>/`
            # and KServe's own source paths are not ours).
            first = PurePosixPath(path).parts[0]
            if first not in dirs or first == "" or anchor:
                continue
            base = PurePosixPath()
        else:
            base = here
        if not path:  # "#anchor": this document
            resolved = document
        else:
            parts: list[str] = []
            escaped = False
            for part in (base / path).parts:
                if part == "..":
                    if not parts:
                        escaped = True
                        break
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            if escaped:
                problems.append(Problem(document, line, target, "points outside the repository"))
                continue
            resolved = "/".join(parts)
            if "*" in resolved:
                pattern = re.compile("^" + re.escape(resolved).replace(r"\*", "[^/]*") + "$")
                if not any(pattern.match(f) for f in files):
                    problems.append(Problem(document, line, target, "matches no file"))
                continue
            if resolved not in files and resolved.rstrip("/") not in dirs:
                if in_backticks and (ignored(root, resolved) or ignored(root, resolved + "/")):
                    continue  # made by the tools: named, never linked
                problems.append(Problem(document, line, target, "no such file in the repository"))
                continue
        if anchor and resolved.endswith(".md") and anchor not in headings(resolved):
            problems.append(Problem(document, line, target, f"no heading #{anchor} in {resolved}"))
    return problems


FILES = repository_files(ROOT)
DOCUMENTS = documents(ROOT, FILES)


def test_the_documents_are_found() -> None:
    assert "README.md" in DOCUMENTS
    assert {"docs/operations.md", "docs/testing.md", "docs/cli.md"} <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_resolves_inside_the_repository(document: str) -> None:
    problems = check(ROOT, FILES, document)
    assert not problems, "\n".join(map(str, problems))


def test_no_document_names_the_shared_folder_outside_the_repository() -> None:
    """The KServe data the tests read lives beside the clone: documents say so in words."""
    for document in DOCUMENTS:
        text = (ROOT / document).read_text(encoding="utf-8")
        assert "../shared" not in text, document


# --- the checker itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Follow a registry alias (`sync`)", "follow-a-registry-alias-sync"),
        (
            "Manifests without a cluster (`--dry-run=client`, GitOps)",
            "manifests-without-a-cluster---dry-runclient-gitops",
        ),
        (
            "The project's own runtime (`pyfunc`, kserve-predictor-mlflow)",
            "the-projects-own-runtime-pyfunc-kserve-predictor-mlflow",
        ),
        ("Conflicts and `--force` (`FUSEML_FORCE=true`)", "conflicts-and---force-fuseml_forcetrue"),
        ("Through [MLflow](https://mlflow.org) *deployments*", "through-mlflow-deployments"),
    ],
)
def test_headings_slug_as_github_slugs_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_checker_finds_each_kind_of_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "rbac.yaml").write_text("kind: Role\n")
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Second part\n\n## Second part\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[fine](docs/a.md#second-part) [fine too](docs/a.md#second-part-1) [here](#top)\n"
        "[dir](deploy/) `deploy/rbac.yaml` [web](https://example.com/x.md#nope)\n"
        "```\n[in a code block](missing-in-code.md)\n```\n"
        "`[in a code span](missing-in-span.md)`\n"
        "[missing](docs/b.md) [outside](../shared/x.md) [bad anchor](docs/a.md#third)\n"
        "[here, bad](#nowhere) `deploy/role.yaml`\n"
        "[ref]: docs/c.md\n"
    )
    files = {"README.md", "docs/a.md", "deploy/rbac.yaml"}
    problems = check(tmp_path, files, "README.md")
    assert [(p.line, p.target, p.reason) for p in problems] == [
        (9, "docs/b.md", "no such file in the repository"),
        (9, "../shared/x.md", "points outside the repository"),
        (9, "docs/a.md#third", "no heading #third in docs/a.md"),
        (10, "#nowhere", "no heading #nowhere in README.md"),
        (11, "docs/c.md", "no such file in the repository"),
        (10, "deploy/role.yaml", "no such file in the repository"),
    ]
