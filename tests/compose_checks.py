"""Pure checks of a Compose file and a Dockerfile, for tests/test_compose.py.

The readers accept every syntax the Compose specification allows for the fields they read
(short and long forms of ports, volumes, depends_on and environment). Each check takes the
parsed file and returns a list of problems, one readable line each; an empty list means the
check found nothing. Nothing here reads files, starts processes or touches the network,
except `build_contexts_without_dockerfile`, which looks for files under a given root.
"""

from __future__ import annotations

import json
import re
import shlex
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import click

SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}

Compose = dict[str, Any]


# --- reading the pieces of a compose file, in any of the spec's syntaxes ------------------


def services(compose: Compose) -> dict[str, dict[str, Any]]:
    return dict(compose.get("services") or {})


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> list[str]:
    return list(service.get("depends_on") or [])


def volume_mounts(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(named volume or None for binds and anonymous volumes, container path) per mount."""
    mounts: list[tuple[str | None, str]] = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            named = entry.get("type", "volume") == "volume" and entry.get("source")
            mounts.append((entry["source"] if named else None, entry["target"]))
            continue
        parts = entry.split(":")
        if len(parts) == 1:
            mounts.append((None, parts[0]))
        else:
            source, target = parts[0], parts[1]
            is_path = source.startswith(("/", ".", "~", "$"))
            mounts.append((None if is_path else source, target))
    return mounts


def _port_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host ip, host port) for each published port; an empty ip means every interface."""
    published: list[tuple[str, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                host_ip = entry.get("host_ip", "")
                published += [(host_ip, p) for p in _port_range(str(entry["published"]))]
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: Docker picks an ephemeral host port
        host_ip = parts[0].strip("[]") if len(parts) == 3 else ""
        published += [(host_ip, p) for p in _port_range(parts[-2])]
    return published


def invocations(service: dict[str, Any], image_default: list[str]) -> list[list[str]]:
    """The argv of every program the container runs, looking inside `sh -c` scripts
    (`image_default`: the ENTRYPOINT of its image, for a service that sets none)."""
    entrypoint = service.get("entrypoint", image_default)
    command = service.get("command") or []
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)
    command = shlex.split(command) if isinstance(command, str) else list(command)
    argv = entrypoint + command
    if len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
        found = []
        for step in re.split(r"&&|\|\||;", argv[2]):
            words = shlex.split(step)
            if words and words[0] == "exec":
                words = words[1:]
            if words:
                found.append(words)
        return found
    return [argv]


#: The exec-form ENTRYPOINT of each stage of a Dockerfile, by stage name; "" names the last
#: stage (what `docker build` makes without --target).
Entrypoints = dict[str, list[str]]


def dockerfile_entrypoints(text: str) -> Entrypoints:
    """Each stage's ENTRYPOINT, inherited from the stage it is built FROM when it sets none."""
    logical = re.sub(r"\\\n", " ", text)
    own: dict[str, list[str] | None] = {}
    base: dict[str, str] = {}
    order: list[str] = []
    for line in logical.splitlines():
        stage = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if stage:
            name = stage.group(2) or f"#{len(order)}"
            order.append(name)
            own[name], base[name] = None, stage.group(1)
            continue
        match = re.match(r"\s*ENTRYPOINT\s+(.*)$", line, re.IGNORECASE)
        if match and order:
            value = json.loads(match.group(1))
            assert isinstance(value, list), "ENTRYPOINT must use the exec (JSON) form"
            own[order[-1]] = [str(word) for word in value]

    def resolve(name: str) -> list[str] | None:
        seen: set[str] = set()
        while name in own and name not in seen:
            seen.add(name)
            found = own[name]
            if found is not None:
                return found
            name = base[name]
        return None

    entrypoints = {name: found for name in order if (found := resolve(name)) is not None}
    assert order and order[-1] in entrypoints, "the Dockerfile's last stage has no ENTRYPOINT"
    entrypoints[""] = entrypoints[order[-1]]
    return entrypoints


def dockerfile_entrypoint(text: str) -> list[str]:
    """The ENTRYPOINT of the final stage (the last one in the file)."""
    return dockerfile_entrypoints(text)[""]


def image_entrypoint(service: dict[str, Any], entrypoints: Entrypoints) -> list[str]:
    """The ENTRYPOINT of the image a service builds (its build target, else the last stage)."""
    build = service.get("build")
    target = build.get("target", "") if isinstance(build, dict) else ""
    assert target in entrypoints, f"no Dockerfile stage {target!r}"
    return entrypoints[target]


def project_services(compose: Compose) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services(compose).items() if "build" in svc}


# --- the checks -------------------------------------------------------------------------


def undeclared_dependencies(compose: Compose) -> list[str]:
    known = set(services(compose))
    return [
        f"{name} depends on unknown service {dep!r}"
        for name, svc in services(compose).items()
        for dep in depends_on(svc)
        if dep not in known
    ]


def dependencies_hidden_by_profiles(compose: Compose) -> list[str]:
    """A service started by default must not wait for one that exists only under a profile."""
    all_services = services(compose)
    return [
        f"{name} depends on {dep!r}, which runs only under profiles {all_services[dep]['profiles']}"
        for name, svc in all_services.items()
        if not svc.get("profiles")
        for dep in depends_on(svc)
        if dep in all_services and all_services[dep].get("profiles")
    ]


def undeclared_volumes(compose: Compose) -> list[str]:
    declared = set(compose.get("volumes") or {})
    return [
        f"{name} mounts undeclared volume {source!r}"
        for name, svc in services(compose).items()
        for source, _ in volume_mounts(svc)
        if source is not None and source not in declared
    ]


def shared_data_dirs(compose: Compose) -> list[str]:
    """Every service with MANAGED_DATA_DIR keeps it on a named volume of its own."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for name, svc in services(compose).items():
        data_dir = environment(svc).get("MANAGED_DATA_DIR")
        if data_dir is None:
            continue
        sources = [source for source, target in volume_mounts(svc) if target == data_dir]
        if not sources or sources[0] is None:
            problems.append(f"{name} keeps {data_dir} on no named volume")
        elif sources[0] in owners:
            problems.append(f"{name} shares volume {sources[0]!r} with {owners[sources[0]]}")
        else:
            owners[sources[0]] = name
    return problems


def build_contexts_without_dockerfile(compose: Compose, root: Path) -> list[str]:
    problems: list[str] = []
    for name, svc in services(compose).items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = root / build.get("context", ".")
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        if not dockerfile.is_file():
            problems.append(f"{name} builds from {dockerfile}, which does not exist")
    return problems


def port_problems(compose: Compose) -> list[str]:
    """Host ports are unique across services, and all bound to loopback."""
    owners: dict[int, list[str]] = {}
    problems: list[str] = []
    for name, svc in services(compose).items():
        for host_ip, port in published_ports(svc):
            owners.setdefault(port, []).append(name)
            if host_ip != "127.0.0.1":
                problems.append(f"{name} publishes port {port} on {host_ip or 'every interface'}")
    problems += [f"port {p} published by {', '.join(n)}" for p, n in owners.items() if len(n) > 1]
    return problems


def ensemble_problems(compose: Compose) -> list[str]:
    """ZooKeeper ids are unique, each server line names the service owning that id, and the
    connection string the nodes use lists exactly the ensemble's client ports."""
    zookeepers = {
        name: environment(svc)
        for name, svc in services(compose).items()
        if str(svc.get("image", "")).startswith("zookeeper:")
    }
    problems: list[str] = []
    ids = Counter(env.get("ZOO_MY_ID") for env in zookeepers.values())
    problems += [f"ZOO_MY_ID {i} used {n} times" for i, n in ids.items() if n > 1]
    by_id = {env.get("ZOO_MY_ID"): name for name, env in zookeepers.items()}
    client_addresses = set()
    for name, env in zookeepers.items():
        lines = dict(re.findall(r"server\.(\d+)=(\S+)", env.get("ZOO_SERVERS", "")))
        if set(lines) != set(by_id):
            problems.append(
                f"{name}: ZOO_SERVERS ids {sorted(lines)} != ZOO_MY_IDs {sorted(by_id)}"
            )
        extra = dict(re.findall(r"(\S+?)=(\S+)", env.get("ZOO_CFG_EXTRA", "")))
        secure_port = extra.get("secureClientPort")
        if secure_port is None:
            problems.append(f"{name}: no secureClientPort: ZooKeeper is reached over TLS only")
        if "clientPort" in extra:
            problems.append(f"{name}: clientPort opens a plain client port")
        if extra.get("sslQuorum") != "true":
            problems.append(f"{name}: sslQuorum is not true: quorum traffic must be TLS too")
        for server_id, address in lines.items():
            host, _, plain_port = address.partition(";")
            if plain_port:
                problems.append(f"{name}: server.{server_id} opens a plain client port")
            if host.split(":")[0] != by_id.get(server_id):
                problems.append(f"{name}: server.{server_id}={host} is not {by_id.get(server_id)}")
            client_addresses.add(f"{host.split(':')[0]}:{secure_port}")
    for name, svc in services(compose).items():
        hosts = environment(svc).get("MANAGED_ZK")
        if hosts is None:
            continue
        if set(hosts.split(",")) != client_addresses:
            problems.append(f"{name}: MANAGED_ZK={hosts} is not the ensemble {client_addresses}")
        for needed in ("MANAGED_ZK_CA", "MANAGED_ZK_AUTH"):
            if not environment(svc).get(needed):
                problems.append(f"{name}: no {needed}")
    return problems


def node_problems(compose: Compose, entrypoints: Entrypoints) -> list[str]:
    """A node joins and runs under its own service name, advertises an address the others can
    resolve, listens on every interface at that port, and its healthcheck asks that port."""
    problems: list[str] = []
    for name, svc in services(compose).items():
        steps = [
            argv
            for argv in invocations(svc, image_entrypoint(svc, entrypoints))
            if argv[:2] == ["managed", "node"]
        ]
        if not steps:
            continue
        verbs = [(argv[2], argv[3]) for argv in steps if len(argv) > 3]
        if verbs != [("join", name), ("run", name)]:
            problems.append(
                f"{name}: expected 'node join {name}' then 'node run {name}', got {verbs}"
            )
        join = next((argv for argv in steps if argv[2:3] == ["join"]), [])
        address = join[join.index("--api-address") + 1] if "--api-address" in join else ""
        host, _, port = address.partition(":")
        if host != name:
            problems.append(f"{name}: --api-address {address!r} is not reachable as {name}")
        listen = environment(svc).get("MANAGED_LISTEN")
        if listen != f"0.0.0.0:{port}":
            problems.append(f"{name}: MANAGED_LISTEN={listen}, not 0.0.0.0:{port} for localhost")
        if f"localhost:{port}/health" not in " ".join(svc.get("healthcheck", {}).get("test", [])):
            problems.append(f"{name}: healthcheck does not ask localhost:{port}/health")
    return problems


def unknown_programs(compose: Compose, entrypoints: Entrypoints, scripts: set[str]) -> list[str]:
    """Every program run from the project image is one of the project's console scripts."""
    return [
        f"{name} runs {argv[0]!r}, not a console script of the project"
        for name, svc in project_services(compose).items()
        for argv in invocations(svc, image_entrypoint(svc, entrypoints))
        if argv[0] not in scripts
    ]


def parse_without_running(root: click.Command, argv: list[str]) -> click.Command:
    """Resolve argv down to its leaf command and parse its options, invoking nothing."""
    ctx = root.make_context(argv[0], argv[1:])
    command = root
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # protected_args: deprecated in click 8.2, gone in 9
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", []), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return command
