"""The image, its RBAC and the FuseML workflow example, checked without Docker or a cluster.

- Dockerfile: a non-root final stage, the `run` entry point FuseML calls, the lean core only;
- the wheel built from exactly what the Dockerfile copies carries only the core dependencies;
- importing the CLI pulls in no model runtime;
- deploy/rbac.yaml has only namespaced, plain rules (what they grant: tests/test_rbac.py);
- examples/fuseml/mlflow-e2e.yaml is a FuseML workflow whose predictor inputs are the
  FUSEML_* variables the step reads;
- the release recipe: one version number (kserve_predictor.__version__) that the wheel, every
  image tag the repository names, scripts/images.sh and the default runtime image carry.
"""

from __future__ import annotations

import email.message
import email.parser
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from kserve_predictor import __version__

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
RBAC = ROOT / "deploy" / "rbac.yaml"
WORKFLOW = ROOT / "examples" / "fuseml" / "mlflow-e2e.yaml"

# The image's dependencies. Written out, not read from pyproject.toml: moving a runtime into
# the core dependencies must fail here, not silently grow the image.
CORE_DEPENDENCIES = {"boto3", "pyyaml", "packaging", "requests", "kubernetes"}
HEAVY_DISTRIBUTIONS = {
    "kserve",
    "mlflow",
    "mlflow-skinny",
    "tensorflow",
    "tensorflow-cpu",
    "onnxruntime",
    "scikit-learn",
    "skops",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
    "tritonclient",
    "torch",
    "numpy",
    "pandas",
}
HEAVY_MODULES = {
    "kserve",
    "mlflow",
    "tensorflow",
    "onnxruntime",
    "sklearn",
    "skops",
    "xgboost",
    "lightgbm",
    "tritonclient",
    "torch",
}

# What the step reads (DESIGN.md §2); FuseML passes input `x` as FUSEML_<X>.
STEP_VARIABLES = {
    "FUSEML_MODEL",
    "FUSEML_PREDICTOR",
    "FUSEML_APP_NAME",
    "FUSEML_RUNTIME_VERSION",
    "FUSEML_RESOURCES_LIMITS",
    "FUSEML_VERBOSE",
}


@pytest.fixture(scope="module")
def project() -> dict:
    """pyproject.toml's [project] table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


# --- a small Dockerfile reader --------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            words = shlex.split(args)
            if len(words) == 2 and "=" not in words[0]:  # legacy `ENV KEY value`
                values[words[0]] = words[1]
            else:
                for word in words:
                    key, _, value = word.partition("=")
                    values[key] = value
        return values


def _instructions(text: str) -> Iterator[Instruction]:
    """Logical instructions: comments dropped, backslash continuations joined."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            yield Instruction(keyword.upper(), args.strip())
    assert not pending, "the Dockerfile ends inside a continued instruction"


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in _instructions(path.read_text()):
        if ins.keyword == "ARG" and not stages:
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        elif ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        else:
            assert stages, f"{ins.keyword} before the first FROM"
            stages[-1].instructions.append(ins)
    assert stages, "no FROM in the Dockerfile"
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile()


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


# --- Dockerfile -----------------------------------------------------------------------------


def test_every_stage_uses_the_slim_python_base(stages: list[Stage]) -> None:
    """Directly, or through an earlier stage (the runtime's TensorFlow tag)."""
    for i, stage in enumerate(stages):
        earlier = {s.name for s in stages[:i] if s.name}
        assert stage.base == "python:3.11-slim" or stage.base in earlier, stage.base


def test_final_stage_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage has no USER: the step would run as root"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert match, f"USER {users[-1]!r} is not numeric (runAsNonRoot cannot verify a name)"
    uid, gid = int(match.group(1)), int(match.group(2) or match.group(1))
    assert uid != 0 and gid != 0
    assert uid == 10001
    # the user exists, with a home directory, and HOME points at it
    created = " ".join(final.all("RUN"))
    assert re.search(rf"useradd\b[^&;]*--uid {uid}\b[^&;]*--create-home", created), created
    home = re.search(r"--home-dir (\S+)", created)
    assert home and final.env().get("HOME") == home.group(1)
    # nothing after USER switches back
    last_user = max(i for i, ins in enumerate(final.instructions) if ins.keyword == "USER")
    assert all(ins.keyword != "USER" for ins in final.instructions[last_user + 1 :])


def test_final_stage_environment_and_working_directory(final: Stage) -> None:
    env = final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    workdir = final.all("WORKDIR")
    # FuseML mounts the codeset at the workflow's codeset.path and makes it the working directory
    assert workdir and workdir[-1] == "/project"


def test_no_secrets_are_baked_into_the_image(stages: list[Stage]) -> None:
    secretish = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL)", re.IGNORECASE)
    for stage in stages:
        for name in stage.env():
            assert not secretish.search(name), f"ENV {name} in the image"
        for arg in stage.all("ARG"):
            assert not secretish.search(arg), f"ARG {arg} ends up in the image history"
        for src in stage.all("COPY") + stage.all("ADD"):
            assert not re.search(r"\.env\b|kube|\.aws|\.pem\b", src), src


def test_final_stage_installs_the_core_without_extras(final: Stage) -> None:
    installs = [r for r in final.all("RUN") if re.search(r"\bpip\d? install\b", r)]
    assert installs, "the final stage installs nothing"
    for command in installs:
        assert "--no-cache-dir" in command
        assert "[" not in command, f"extras installed into the image: {command}"
        assert not re.search(r"\s-r\s|--requirement", command), command
        for heavy in HEAVY_DISTRIBUTIONS:
            assert not re.search(rf"(^|\s){re.escape(heavy)}([<>=!~\s]|$)", command), command


def _run_script_command(final: Stage) -> str:
    runs = [r for r in final.all("RUN") if "/usr/local/bin/run" in r]
    assert len(runs) == 1, "exactly one RUN instruction should create /usr/local/bin/run"
    return runs[0]


def test_run_is_on_path_and_execs_kserve_predictor_run(final: Stage, tmp_path: Path) -> None:
    """Execute the Dockerfile's RUN that writes `run`, then run the script it made."""
    command = _run_script_command(final)
    assert "chmod" in command
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "run"
    subprocess.run(
        ["/bin/sh", "-c", command.replace("/usr/local/bin/run", str(script))], check=True
    )
    assert script.stat().st_mode & 0o111 == 0o111, "run is not executable by everyone"
    assert script.read_text().startswith("#!/bin/sh\n")

    # a stand-in kserve-predictor reports its argv and pid
    fake = bin_dir / "kserve-predictor"
    fake.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'pid': os.getpid()}))\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    # FuseML runs the bare command `run`: it must resolve through PATH
    proc = subprocess.Popen(
        ["run", "--flag", "two words", "$HOME"], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    report = json.loads(out)
    assert report["argv"] == ["run", "--flag", "two words", "$HOME"]
    assert report["pid"] == proc.pid, "run must exec kserve-predictor, not fork it"


def test_default_command_is_the_step(final: Stage) -> None:
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["kserve-predictor"]
    assert json.loads(final.all("CMD")[-1]) == ["run"]


# --- .dockerignore and the wheel built from the Dockerfile's build context ------------------


def _dockerignore_patterns() -> list[str]:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "exceptions are not supported by this reader"
            patterns.append(line.strip("/"))
    return patterns


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Docker's matching for the patterns used here: globs, `**/` prefixes, directories."""
    parts = PurePosixPath(rel).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/"):
                tail = pattern[3:]
                pieces = PurePosixPath(prefix).parts
                if any(fnmatch.fnmatchcase("/".join(pieces[i:]), tail) for i in range(len(pieces))):
                    return True
    return False


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/.zoo-cache/abc/model/MLmodel",
        "src/kserve_predictor/__pycache__/cli.cpython-311.pyc",
        "src/fuseml_kserve_predictor.egg-info/PKG-INFO",
        ".kserve-predictor/state.json",
        ".pytest_cache/v/cache",
        "mlruns/0/meta.yaml",
        ".env",
        "build/lib/kserve_predictor/interfaces/cli/__init__.py",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert dockerignored(path, _dockerignore_patterns())


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "src/kserve_predictor/interfaces/cli/__init__.py",
        "src/kserve_predictor/py.typed",
    ],
)
def test_dockerignore_keeps_what_the_build_needs(path: str) -> None:
    assert not dockerignored(path, _dockerignore_patterns())


def _build_context(stages: list[Stage], dest: Path) -> None:
    """Copy what the build stage's COPY instructions take from the context, minus ignores."""
    patterns = _dockerignore_patterns()
    build = stages[0]
    copies = [c for c in build.all("COPY") if "--from" not in c]
    assert copies, "the build stage copies no sources"
    for copy in copies:
        *sources, target = [w for w in shlex.split(copy) if not w.startswith("--")]
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"COPY {source}: not in the repository"
            out = dest / target / Path(source).name if target.endswith("/") else dest / target
            if src.is_dir():
                for file in src.rglob("*"):
                    rel = file.relative_to(ROOT).as_posix()
                    if file.is_file() and not dockerignored(rel, patterns):
                        copied = out / file.relative_to(src)
                        copied.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, copied)
            else:
                assert not dockerignored(source, patterns), f"COPY {source} is dockerignored"
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)


@pytest.fixture(scope="module")
def wheel(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the image installs, built from the Dockerfile's build context (a copy, so the
    repository gets no build/ or egg-info side effects)."""
    context = tmp_path_factory.mktemp("context")
    _build_context(stages, context)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
    if all(importlib.util.find_spec(m) for m in ("setuptools", "wheel")):
        command.append("--no-build-isolation")  # offline: this environment has the backend
    result = subprocess.run(
        [*command, str(context)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("*.whl")
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(name).decode())


def test_wheel_core_dependencies_are_only_the_lean_core(wheel: Path) -> None:
    requires = [Requirement(r) for r in _metadata(wheel).get_all("Requires-Dist") or []]
    core = [r for r in requires if not (r.marker and "extra" in str(r.marker))]
    names = {canonicalize_name(r.name) for r in core}
    assert names <= CORE_DEPENDENCIES, f"not lean: {sorted(names - CORE_DEPENDENCIES)}"
    assert not names & HEAVY_DISTRIBUTIONS
    assert names == CORE_DEPENDENCIES, f"missing from the core: {CORE_DEPENDENCIES - names}"
    # kubernetes 37 breaks the kserve SDK client (DESIGN.md): the pin must reach the image
    (kube,) = [r for r in core if canonicalize_name(r.name) == "kubernetes"]
    assert not kube.specifier.contains("37.0.0")
    # the extras are still declared, just not installed by default
    extras = {canonicalize_name(r.name) for r in requires if r.marker and "extra" in str(r.marker)}
    assert {"kserve", "mlflow-skinny"} <= extras


def test_wheel_is_the_project_and_ships_the_console_script(wheel: Path, project: dict) -> None:
    meta = _metadata(wheel)
    assert canonicalize_name(meta["Name"]) == canonicalize_name(project["name"])
    assert meta["Version"] == __version__
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert (
            "kserve-predictor = kserve_predictor.interfaces.cli:main"
            in zf.read(entry_points).decode()
        )
        assert "kserve_predictor/interfaces/cli/__init__.py" in names
        assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_importing_the_cli_loads_no_model_runtime(tmp_path: Path) -> None:
    """The deploy path runs in the lean image: the CLI and its parser must not import extras."""
    code = (
        "import json, sys\n"
        "import kserve_predictor.interfaces.cli as cli\n"
        "try:\n"
        "    cli.main(['--version'])\n"  # builds the full parser (engines registry included)
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "kserve_predictor.interfaces.cli" in modules
    loaded = {m.split(".")[0] for m in modules} & HEAVY_MODULES
    assert not loaded, f"importing the CLI loaded {sorted(loaded)}"


# --- deploy/rbac.yaml -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rbac() -> list[dict]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def test_rbac_has_only_namespaced_objects(rbac: list[dict]) -> None:
    kinds = [d["kind"] for d in rbac if not d["kind"].startswith("Cluster")]
    assert sorted(kinds) == ["Role", "RoleBinding", "ServiceAccount"]
    namespaces = {d["metadata"].get("namespace") for d in rbac if d["kind"] in kinds}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    (sa,) = [d for d in rbac if d["kind"] == "ServiceAccount"]
    assert sa["metadata"]["name"] == "fuseml-kserve-predictor"


def test_rbac_rules_are_plain_and_namespaced(rbac: list[dict]) -> None:
    """The rule shapes; what they grant is measured against the step's runs in test_rbac.py."""
    (role,) = [d for d in rbac if d["kind"] == "Role"]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, (
            f"unexpected rule fields (resourceNames/nonResourceURLs): {rule}"
        )
        for part in ("apiGroups", "resources", "verbs"):
            values = rule[part]
            assert isinstance(values, list) and values, f"{part} must be a non-empty list"
            assert not any("*" in v for v in values), f"wildcard in {part}: {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert ("", "namespaces") not in granted


def test_the_only_cluster_grant_is_listing_cluster_serving_runtimes(rbac: list[dict]) -> None:
    (role,) = [d for d in rbac if d["kind"] == "ClusterRole"]
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["clusterservingruntimes"],
            "verbs": ["list"],
        }
    ]
    (binding,) = [d for d in rbac if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {s["kind"] for s in binding["subjects"]} == {"ServiceAccount"}


def test_rbac_binding_binds_the_role_to_service_accounts_only(rbac: list[dict]) -> None:
    (role,) = [d for d in rbac if d["kind"] == "Role"]
    (binding,) = [d for d in rbac if d["kind"] == "RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    subjects = binding["subjects"]
    assert all(s["kind"] == "ServiceAccount" for s in subjects), "no users or groups"
    assert all(s["namespace"] == binding["metadata"]["namespace"] for s in subjects)
    assert "fuseml-kserve-predictor" in {s["name"] for s in subjects}


# --- examples/fuseml/mlflow-e2e.yaml --------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _step(workflow: dict, name: str) -> dict:
    (step,) = [s for s in workflow["steps"] if s["name"] == name]
    return step


def test_workflow_has_fuseml_shape(workflow: dict) -> None:
    assert workflow["name"] == "mlflow-e2e"
    assert workflow["description"].strip()
    inputs = {i["name"]: i for i in workflow["inputs"]}
    codesets = [i for i in inputs.values() if i["type"] == "codeset"]
    assert len(codesets) == 1
    assert inputs["predictor"]["default"] == "auto"
    # fuseml-core dereferences description and default of every non-codeset input
    for i in inputs.values():
        if i["type"] != "codeset":
            assert "description" in i and "default" in i, i
    assert [o["name"] for o in workflow["outputs"]] == ["prediction-url"]
    assert [s["name"] for s in workflow["steps"]] == ["builder", "trainer", "predictor"]
    # every `{{ inputs.x }}` / `{{ steps.s.outputs.o }}` reference names something declared
    text = WORKFLOW.read_text()
    for ref in re.findall(r"\{\{\s*inputs\.([\w-]+)", text):
        assert ref in inputs, ref
    outputs = {(s["name"], o["name"]) for s in workflow["steps"] for o in s.get("outputs", [])}
    for step, out in re.findall(r"\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)", text):
        assert (step, out) in outputs, (step, out)


def test_predictor_step_inputs_are_the_variables_the_step_reads(workflow: dict) -> None:
    step = _step(workflow, "predictor")
    variables = set()
    for i in step["inputs"]:
        if "codeset" in i:
            continue
        assert "value" in i, f"input {i['name']} has no value (fuseml-core requires one)"
        assert isinstance(i["value"], str), f"input {i['name']}: values are strings"
        variable = "FUSEML_" + i["name"].upper()  # fuseml-core: inputsVarPrefix + ToUpper(name)
        assert variable in STEP_VARIABLES, f"input {i['name']!r} becomes {variable}, never read"
        variables.add(variable)
    assert variables == STEP_VARIABLES, f"inputs not shown: {STEP_VARIABLES - variables}"
    values = {i["name"]: i.get("value") for i in step["inputs"]}
    assert values["model"] == "{{ steps.trainer.outputs.mlflow-model-url }}"
    assert values["predictor"] == "{{ inputs.predictor }}"
    assert values["verbose"] in ("true", "false")
    assert "FUSEML_ENV_WORKFLOW_NAME" not in variables  # set by FuseML, not an input


def test_predictor_step_matches_the_image(workflow: dict, final: Stage) -> None:
    step = _step(workflow, "predictor")
    image, _, tag = step["image"].rpartition(":")
    assert image == "ghcr.io/fuseml/kserve-predictor"
    assert tag == __version__
    # the codeset is mounted where the image's working directory is
    (codeset,) = [i["codeset"] for i in step["inputs"] if "codeset" in i]
    assert codeset["path"] == final.all("WORKDIR")[-1]
    assert [o["name"] for o in step["outputs"]] == ["prediction-url"]
    resources = {e.get("service_resource") for e in step.get("extensions", [])}
    assert {"s3", "kserve-api"} <= resources
    # credentials come from the extension registry, never from the workflow's env
    assert all("env" not in s for s in workflow["steps"])


def test_trainer_uses_the_builder_image(workflow: dict) -> None:
    builder = _step(workflow, "builder")
    assert builder["image"].startswith("ghcr.io/fuseml/mlflow-builder:")
    (out,) = builder["outputs"]
    assert _step(workflow, "trainer")["image"] == f"{{{{ steps.builder.outputs.{out['name']} }}}}"
    trainer = _step(workflow, "trainer")
    assert [o["name"] for o in trainer["outputs"]] == ["mlflow-model-url"]
    assert {e["name"] for e in trainer["extensions"]} == {"mlflow-tracking", "mlflow-store"}


def test_gc_rbac_is_a_separate_read_only_cluster_role() -> None:
    """gc lists InferenceServices (and, for the fallback, namespaces) cluster-wide; nothing more."""
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "rbac-gc.yaml").read_text()) if d]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("serving.kserve.io", "inferenceservices"): {"list"},
        ("", "namespaces"): {"list"},
    }
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "fuseml-kserve-predictor-gc"
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]


# --- the release recipe: one version number ---------------------------------------------------

IMAGE_REFERENCE = re.compile(r"ghcr\.io/fuseml/(kserve-predictor(?:-runtime)?):([0-9][\w.+-]*)")


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_in_one_place(project: dict) -> None:
    """pyproject.toml takes the version from the package; it writes none of its own."""
    assert "version" not in project
    assert "version" in project["dynamic"]
    dynamic = _pyproject()["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "kserve_predictor.__version__"}
    init = (ROOT / "src" / "kserve_predictor" / "__init__.py").read_text()
    assert f'__version__ = "{__version__}"' in init.splitlines()  # what scripts/images.sh reads


def _text_files() -> Iterator[Path]:
    for top in ("README.md", "Dockerfile", "docs", "examples", "deploy", "scripts", "src"):
        path = ROOT / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" not in file.parts and file.suffix not in (".pyc", ".whl"):
                yield file


def test_every_image_tag_the_repository_names_is_this_version() -> None:
    """Workflows, the runtime manifest and the docs name the images of this version; a release
    that bumps __version__ and forgets one of them fails here."""
    found = []
    for file in _text_files():
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            continue
        for match in IMAGE_REFERENCE.finditer(text):
            tag = match.group(2).removesuffix("-tensorflow")
            found.append((str(file.relative_to(ROOT)), match.group(0)))
            assert tag == __version__, f"{file.relative_to(ROOT)} names {match.group(0)}"
    names = {f for f, _ in found}
    assert {
        "examples/fuseml/mlflow-e2e.yaml",
        "examples/fuseml/mlflow-e2e-canary.yaml",
        "deploy/kserve-predictor-mlflow.yaml",
    } <= names


def _fake_docker(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "docker.log"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\n')
    docker.chmod(0o755)
    return docker, log


@pytest.mark.parametrize("push", [False, True])
def test_images_script_tags_every_image_with_the_version(tmp_path: Path, push: bool) -> None:
    from kserve_predictor.engines.own_runtime import IMAGE

    docker, log = _fake_docker(tmp_path)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "images.sh"), *(["--push"] if push else [])],
        env={**os.environ, "DOCKER": str(docker)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    v = __version__
    builds = [
        f"build --build-arg VERSION={v} --target step -t ghcr.io/fuseml/kserve-predictor:{v} .",
        f"build --build-arg VERSION={v} --target runtime -t {IMAGE} .",
        f"build --build-arg VERSION={v} --target runtime-tensorflow -t {IMAGE}-tensorflow .",
        f"build --build-arg VERSION={v} --target sync -t ghcr.io/fuseml/kserve-predictor-sync:{v} .",
    ]
    pushes = [
        f"push ghcr.io/fuseml/kserve-predictor:{v}",
        f"push {IMAGE}",
        f"push {IMAGE}-tensorflow",
        f"push ghcr.io/fuseml/kserve-predictor-sync:{v}",
    ]
    assert log.read_text().splitlines() == builds + (pushes if push else [])


def test_images_script_targets_are_the_dockerfiles_stages(stages: list[Stage]) -> None:
    script = (ROOT / "scripts" / "images.sh").read_text()
    targets = re.findall(r'^  "([\w-]+):\$registry/', script, re.MULTILINE)
    assert targets == ["step", "runtime", "runtime-tensorflow", "sync"]
    assert set(targets) <= {s.name for s in stages}
    assert stages[-1].name == "step"  # and still the default target


def test_the_sync_image_runs_the_sync_command_of_its_manifest(stages: list[Stage]) -> None:
    """deploy/sync/sync.yaml runs the image the sync target builds, with `sync` as its first
    argument to the image's `kserve-predictor` entrypoint."""
    (sync,) = [s for s in stages if s.name == "sync"]
    (install,) = [r for r in sync.all("RUN") if "pip install" in r]
    assert "[sync]" in install
    assert sync.all("ENTRYPOINT") == ['["kserve-predictor"]']
    documents = [
        d for d in yaml.safe_load_all((ROOT / "deploy" / "sync" / "sync.yaml").read_text()) if d
    ]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/fuseml/kserve-predictor-sync:{__version__}"
    assert container["args"][0] == "sync"


def _wheel_step(stages: list[Stage]) -> str:
    (build,) = [s for s in stages if s.name == "build"]
    (run,) = [r for r in build.all("RUN") if "pip wheel" in r]
    return run


@pytest.mark.parametrize(("version", "ok"), [(__version__, True), ("", True), ("9.9.9", False)])
def test_the_build_stage_refuses_a_version_that_is_not_the_packages(
    stages: list[Stage], tmp_path: Path, version: str, ok: bool
) -> None:
    """The image build stops when VERSION (scripts/images.sh passes it) and the wheel differ."""
    dist = tmp_path / "dist"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pip = bin_dir / "pip"  # a pip that builds the package's wheel, by its name
    pip.write_text(
        "#!/bin/sh\nmkdir -p $DIST && "
        f"touch $DIST/fuseml_kserve_predictor-{__version__}-py3-none-any.whl\n"
    )
    pip.chmod(0o755)
    command = _wheel_step(stages).replace("/dist", str(dist))
    result = subprocess.run(
        ["sh", "-c", command],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "VERSION": version, "DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert "VERSION=9.9.9 is not the package's version" in result.stderr


def test_the_library_entry_points_load_from_the_package_root(tmp_path: Path) -> None:
    """docs/library.md's names come from ``kserve_predictor`` itself, each the real object, and
    importing the root loads none of them (nor any extra) until one is used."""
    code = (
        "import json, sys\n"
        "import kserve_predictor as k\n"
        "before = sorted(m for m in sys.modules if m.startswith('kserve_predictor'))\n"
        "found = {n: f'{getattr(k, n).__module__}.{getattr(k, n).__qualname__}' for n in k.__all__"
        " if n != '__version__'}\n"
        "print(json.dumps([before, found]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    before, found = json.loads(result.stdout.strip().splitlines()[-1])
    assert before == ["kserve_predictor"]
    assert found["deploy"] == "kserve_predictor.ops.deploy.deploy"
    assert found["DeploySettings"] == "kserve_predictor.settings.groups.DeploySettings"
    assert found["deploy_local"] == "kserve_predictor.local.deployment.deploy_local"
    for name, where in found.items():
        assert where.endswith(f".{name}"), (name, where)
    import kserve_predictor

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        kserve_predictor.nothing  # noqa: B018
