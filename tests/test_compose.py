"""Static validation of compose.yaml and the Dockerfile.

No Docker engine runs where the suite runs, so the deployment files are checked
without one: against the Compose specification's JSON schema (bundled with
check-jsonschema, so no download), and for the mistakes the schema cannot see:
references to services or volumes that do not exist, two nodes sharing a data
directory, clashing or exposed ports, an ensemble whose ids and server lines
disagree, and commands naming a program or option the project does not have.

Each check is a pure function returning a list of problems; every check is shown
to pass on the real file and to fail on a file broken in the way it looks for.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

# pytest puts tests/ on sys.path while tests/ is not a package, and the repository root once it is.
try:
    import compose_checks as checks
except ModuleNotFoundError:  # pragma: no cover - depends on the layout of tests/
    from tests import compose_checks as checks

Compose = checks.Compose
ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def load_compose() -> Compose:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def console_scripts() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(pyproject["project"]["scripts"])


# --- tests on the real files ------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def real_entrypoints() -> checks.Entrypoints:
    return checks.dockerfile_entrypoints(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def entrypoints() -> checks.Entrypoints:
    return real_entrypoints()


def run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # Point every proxy at a closed loopback port: a schema download would fail loudly.
    closed = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "NO_PROXY": ""}
    env.update({key.lower(): value for key, value in env.items() if key.endswith("_PROXY")})
    cmd = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_compose_file_matches_the_compose_specification_offline() -> None:
    result = run_check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    broken = load_compose()
    broken["services"]["node1"]["restart_policy"] = "always"  # not a service key
    broken["services"]["zk1"]["ports"] = "2181"  # must be a list
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run_check_jsonschema(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "restart_policy" in result.stdout + result.stderr


def test_the_cluster_is_all_there(compose: Compose) -> None:
    svcs = checks.services(compose)
    assert {"zk1", "zk2", "zk3", "node1", "node2", "node3", "mission-control"} <= set(svcs)
    for zk in ("zk1", "zk2", "zk3"):
        assert svcs[zk]["image"] == "zookeeper:3.8"
        assert checks.environment(svcs[zk])["ZOO_4LW_COMMANDS_WHITELIST"] == "srvr,ruok,mntr"
        assert "Mode: (leader|follower)" in " ".join(svcs[zk]["healthcheck"]["test"])
    for node in ("node1", "node2", "node3"):
        assert checks.environment(svcs[node])["MANAGED_CLUSTER"] == "demo"
        conditions = svcs[node]["depends_on"]
        assert conditions == {zk: {"condition": "service_healthy"} for zk in ("zk1", "zk2", "zk3")}
    s3 = [name for name, svc in svcs.items() if str(svc.get("image", "")).startswith("motoserver/")]
    assert len(s3) == 2
    assert all(svcs[name]["profiles"] == ["dev"] for name in s3)


def test_the_real_files_pass_every_check(compose: Compose, entrypoints: checks.Entrypoints) -> None:
    problems = (
        checks.undeclared_dependencies(compose)
        + checks.dependencies_hidden_by_profiles(compose)
        + checks.undeclared_volumes(compose)
        + checks.shared_data_dirs(compose)
        + checks.build_contexts_without_dockerfile(compose, ROOT)
        + checks.port_problems(compose)
        + checks.ensemble_problems(compose)
        + checks.node_problems(compose, entrypoints)
        + checks.unknown_programs(compose, entrypoints, console_scripts())
    )
    assert problems == []


def test_dockerfile_runs_a_console_script_as_an_unprivileged_user(
    entrypoints: checks.Entrypoints,
) -> None:
    assert entrypoints[""] == entrypoints["node"] == ["managed"]
    assert entrypoints["mission-control"] == ["mission-control"]
    assert {entrypoints["node"][0], entrypoints["mission-control"][0]} <= console_scripts()
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = dict(re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE))
    assert stages["python:3.11-slim"] in {"wheel", "runtime"}
    assert re.findall(r"^FROM\s+runtime\s+AS\s+(\S+)", text, re.MULTILINE) == [
        "mission-control",
        "node",
    ]
    for target in ("mission-control", "node"):
        stage = text.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        users = re.findall(r"^USER\s+(\S+)", stage, re.MULTILINE)
        assert users and users[-1] not in {"root", "0"}, target
        assert f"[{target}]" in stage, f"the {target} image installs its own extra"


def test_compose_builds_each_service_from_its_own_target(compose: Compose) -> None:
    targets = {
        name: svc["build"]["target"] for name, svc in checks.project_services(compose).items()
    }
    assert targets == {
        "node1": "node",
        "node2": "node",
        "node3": "node",
        "mission-control": "mission-control",
    }


# --- each check catches what it looks for -------------------------------------------------


def _set(path: list[str], value: Any) -> Callable[[Compose], None]:
    """A change to one key of one service, e.g. _set(["node1", "ports"], [])."""

    def mutate(compose: Compose) -> None:
        target = compose["services"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


Check = Callable[[Compose], list[str]]

BROKEN: dict[str, tuple[Callable[[Compose], None], Check, str]] = {
    "dangling depends_on": (
        _set(["node1", "depends_on"], {"zk9": {"condition": "service_healthy"}}),
        checks.undeclared_dependencies,
        "unknown service 'zk9'",
    ),
    "depends on a dev-only service": (
        _set(["node1", "depends_on"], ["s3-eu-west-1"]),
        checks.dependencies_hidden_by_profiles,
        "runs only under profiles",
    ),
    "undeclared volume": (
        _set(["node2", "volumes"], ["nodeX-data:/var/lib/managed"]),
        checks.undeclared_volumes,
        "undeclared volume 'nodeX-data'",
    ),
    "two nodes share a data dir": (
        _set(["node2", "volumes"], ["node1-data:/var/lib/managed"]),
        checks.shared_data_dirs,
        "node2 shares volume 'node1-data' with node1",
    ),
    "data dir on no volume": (
        _set(["node3", "volumes"], []),
        checks.shared_data_dirs,
        "node3 keeps /var/lib/managed on no named volume",
    ),
    "port clash": (
        _set(["node2", "ports"], ["127.0.0.1:8081:8080"]),
        checks.port_problems,
        "port 8081 published by node1, node2",
    ),
    "port open to the network": (
        _set(["mission-control", "ports"], [{"target": 8443, "published": 9443}]),
        checks.port_problems,
        "publishes port 9443 on every interface",
    ),
    "duplicate ZooKeeper id": (
        _set(["zk3", "environment", "ZOO_MY_ID"], "1"),
        checks.ensemble_problems,
        "ZOO_MY_ID 1 used 2 times",
    ),
    "plain ZooKeeper client port": (
        _set(["zk2", "environment", "ZOO_SERVERS"], "server.1=zk1:2888:3888;2181"),
        checks.ensemble_problems,
        "opens a plain client port",
    ),
    "node without the ZooKeeper CA": (
        _set(["node2", "environment", "MANAGED_ZK_CA"], ""),
        checks.ensemble_problems,
        "node2: no MANAGED_ZK_CA",
    ),
    "node missing a ZooKeeper server": (
        _set(["node1", "environment", "MANAGED_ZK"], "zk1:2281,zk2:2281"),
        checks.ensemble_problems,
        "node1: MANAGED_ZK",
    ),
    "node runs under another name": (
        _set(["node2", "command"], ["managed node join node2 && exec managed node run node1"]),
        lambda compose: checks.node_problems(compose, real_entrypoints()),
        "expected 'node join node2' then 'node run node2'",
    ),
    "node API unreachable from its healthcheck": (
        _set(["node3", "environment", "MANAGED_LISTEN"], "node3:8080"),
        lambda compose: checks.node_problems(compose, real_entrypoints()),
        "node3: MANAGED_LISTEN=node3:8080, not 0.0.0.0:8080",
    ),
    "misspelt program": (
        _set(["mission-control", "entrypoint"], ["mission_control"]),
        lambda compose: checks.unknown_programs(compose, real_entrypoints(), console_scripts()),
        "runs 'mission_control'",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_check_finds_what_it_looks_for(case: str) -> None:
    mutate, check, expected = BROKEN[case]
    compose = load_compose()
    assert not any(expected in problem for problem in check(compose))
    mutate(compose)
    problems = check(compose)
    assert any(expected in problem for problem in problems), problems


def test_a_build_context_without_dockerfile_is_found(tmp_path: Path) -> None:
    compose = {"services": {"app": {"build": {"context": "elsewhere"}}}}
    (tmp_path / "elsewhere").mkdir()
    assert checks.build_contexts_without_dockerfile(compose, tmp_path) != []
    (tmp_path / "elsewhere" / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    assert checks.build_contexts_without_dockerfile(compose, tmp_path) == []


def test_dockerfile_entrypoint_reads_the_last_stage() -> None:
    text = 'FROM a AS one\nENTRYPOINT ["x"]\nFROM b\nENTRYPOINT [\\\n  "managed", "node"]\n'
    assert checks.dockerfile_entrypoint(text) == ["managed", "node"]


def test_a_stage_inherits_the_entrypoint_of_the_stage_it_is_built_from() -> None:
    text = 'FROM a AS one\nENTRYPOINT ["x"]\nFROM one AS two\nRUN true\nFROM b AS three\n'
    with pytest.raises(AssertionError, match="last stage"):
        checks.dockerfile_entrypoints(text)
    found = checks.dockerfile_entrypoints(text + 'ENTRYPOINT ["y"]\n')
    assert found == {"one": ["x"], "two": ["x"], "three": ["y"], "": ["y"]}
    service = {"build": {"context": ".", "target": "two"}}
    assert checks.image_entrypoint(service, found) == ["x"]
    assert checks.image_entrypoint({"build": "."}, found) == ["y"]


# --- commands against the project's own CLIs, once they exist -----------------------------


def _cli_invocations() -> list[Any]:
    compose = load_compose()
    entrypoints = checks.dockerfile_entrypoints(DOCKERFILE.read_text(encoding="utf-8"))
    return [
        pytest.param(name, argv, id=f"{name}:{' '.join(argv[:3])}")
        for name, svc in checks.project_services(compose).items()
        for argv in checks.invocations(svc, checks.image_entrypoint(svc, entrypoints))
    ]


@pytest.mark.parametrize(("service", "argv"), _cli_invocations())
def test_commands_parse_with_the_project_cli(
    service: str, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (entry_point,) = importlib.metadata.entry_points(group="console_scripts", name=argv[0])
    root = entry_point.load()  # an entry point that does not import is a failure, not a skip
    assert isinstance(root, click.Command), f"{entry_point.value} is not a click command"
    for key, value in checks.environment(checks.services(load_compose())[service]).items():
        if key == "MANAGED_ZK_CA":
            value = os.environ["MANAGED_ZK_CA"]  # a path inside the container: this host's CA
        elif value.startswith("${"):
            value = "user:password"  # what compose interpolates at `up`
        monkeypatch.setenv(key, value)
    checks.parse_without_running(root, argv)


def test_parse_without_running_checks_options_and_invokes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    @click.group()
    @click.option("--zk", envvar="SAMPLE_ZK", required=True)
    def sample(zk: str) -> None:
        calls.append("group")

    @sample.group()
    def node() -> None:
        calls.append("node")

    @node.command()
    @click.argument("name")
    @click.option("--datacenter", required=True)
    def join(name: str, datacenter: str) -> None:
        calls.append("join")

    monkeypatch.setenv("SAMPLE_ZK", "zk1:2181")
    good = ["sample", "node", "join", "n1", "--datacenter", "dc"]
    assert checks.parse_without_running(sample, good)
    for bad in (["node", "join", "n1"], ["node", "join", "n1", "--dc", "x"], ["node", "jion"]):
        with pytest.raises(click.UsageError):
            checks.parse_without_running(sample, ["sample", *bad])
    monkeypatch.delenv("SAMPLE_ZK")
    with pytest.raises(click.UsageError):
        checks.parse_without_running(sample, good)
    assert calls == []
