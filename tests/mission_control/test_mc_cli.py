"""The `mission-control` command line: output contract, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mc_postgres import fresh_database

from contract.certs import write_dev_ca
from contract.credentials import CredentialKind, kind_of
from mission_control.cli import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'mc.db'}"
    assert run("db", "upgrade", "--db", url).exit_code == 0
    return url


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1
    return lines[0]


def test_create_prints_only_the_token(db: str) -> None:
    result = run("clusters", "create", "acme", "--geography", "EU", "--db", db)
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    assert kind_of(result.stdout.strip()) is CredentialKind.ENROLLMENT
    assert "acme" in result.stderr
    again = run("clusters", "create", "acme", "--geography", "US", "--db", db)
    assert "exists already" in one_line_error(again)


def test_usage_errors_exit_2(db: str) -> None:
    assert run("clusters", "create", "acme", "--geography", "MARS", "--db", db).exit_code == 2
    assert run("clusters", "create", "no spaces", "--geography", "EU", "--db", db).exit_code == 2
    assert run("tokens", "create", "--user", "a", "--role", "king", "--db", db).exit_code == 2
    bad_date = run("licenses", "set", "acme", "--host-units", "1", "--expires", "soon")
    assert bad_date.exit_code == 2
    assert run("serve", "--listen", "nowhere", "--db", db).exit_code == 2


def test_licenses_and_listing(db: str) -> None:
    run("clusters", "create", "acme", "--geography", "AU", "--db", db)
    result = run(
        "licenses", "set", "acme", "--host-units", "12.5", "--expires", "2031-03-31", "--db", db
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(run("clusters", "list", "--json", "--db", db).stdout)
    assert [(c["name"], c["geography"], c["license"]) for c in listed] == [
        ("acme", "AU", {"host_units": 12.5, "expires": "2031-03-31"})
    ]
    table = run("clusters", "list", "--db", db).stdout
    assert "12.5 HU until 2031-03-31" in table
    missing = run("licenses", "set", "nope", "--host-units", "1", "--expires", "2031-01-01")
    assert one_line_error(missing)  # default database does not exist: clear error


def test_unknown_cluster_license(db: str) -> None:
    result = run(
        "licenses", "set", "nope", "--host-units", "1", "--expires", "2031-01-01", "--db", db
    )
    assert "no cluster named 'nope'" in one_line_error(result)


def test_tokens_and_alerts(db: str) -> None:
    password = "Violet-harbour-42-kites\n" * 2
    added = CliRunner().invoke(
        main, ["users", "add", "alice", "--role", "support-l3", "--db", db], input=password
    )
    assert added.exit_code == 0, added.output
    result = run("tokens", "create", "--user", "alice", "--role", "support-l3", "--db", db)
    assert result.exit_code == 0 and result.stdout.startswith("mct_")
    assert json.loads(run("alerts", "list", "--all", "--json", "--db", db).stdout) == []
    assert "KIND" in run("alerts", "list", "--db", db).stdout


def test_database_errors_are_one_line(tmp_path: Path) -> None:
    absent = f"sqlite:///{tmp_path / 'absent.db'}"
    assert "db upgrade" in one_line_error(run("clusters", "list", "--db", absent))
    assert not (tmp_path / "absent.db").exists()
    assert "unsupported database" in one_line_error(run("alerts", "list", "--db", "mysql://x/y"))
    refused = run("clusters", "list", "--db", "postgresql://u:secret@127.0.0.1:1/x")
    line = one_line_error(refused)
    assert "cannot use database" in line and "secret" not in line
    no_dir = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    assert "does not exist" in one_line_error(run("db", "upgrade", "--db", no_dir))


def test_dev_ca(tmp_path: Path) -> None:
    target = tmp_path / "ca"
    result = run("certs", "dev-ca", str(target), "--host", "127.0.0.1", "--host", "mc.test")
    assert result.exit_code == 0
    assert sorted(p.name for p in target.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    assert (target / "server-key.pem").stat().st_mode & 0o077 == 0
    assert "exists already" in one_line_error(run("certs", "dev-ca", str(target)))
    assert run("certs", "dev-ca", str(target), "--force").exit_code == 0


def test_serve_refuses_bad_tls_files(tmp_path: Path, db: str) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    result = run("serve", "--db", db, "--tls-cert", str(cert), "--tls-key", str(cert))
    assert "cannot load TLS certificate" in one_line_error(result)
    cert.chmod(0o644)  # as a key, it is open to others
    result = run("serve", "--db", db, "--tls-cert", str(cert), "--tls-key", str(cert))
    assert f"warning: {cert} is open to others: chmod 600" in result.stderr
    result = run("serve", "--db", db, "--tls-cert", str(cert))
    assert "must be given together" in one_line_error(result)


def test_serve_names_a_bad_cipher_list(tmp_path: Path, db: str) -> None:
    certs = write_dev_ca(tmp_path / "certs", ["127.0.0.1"])
    tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    result = run("serve", "--db", db, *tls, "--tls-ciphers", "NOT-A-CIPHER")
    line = one_line_error(result)
    assert "--tls-ciphers" in line and "NOT-A-CIPHER" in line
    assert "certificate" not in line


def test_changes_are_audited_with_the_operator(db: str) -> None:
    assert run("clusters", "create", "acme", "--geography", "EU", "--db", db).exit_code == 0
    licensed = run(
        "licenses", "set", "acme", "--host-units", "3", "--expires", "2031-01-01", "--db", db
    )
    assert licensed.exit_code == 0
    verified = run("audit", "verify", "--db", db)
    assert verified.exit_code == 0 and verified.stdout.startswith("ok: 2 entries")


def test_postgres_url_parameters(postgres_base: str) -> None:
    with fresh_database(postgres_base) as url:
        assert run("db", "upgrade", "--db", f"{url}?sslmode=disable").exit_code == 0
        listed = run("clusters", "list", "--json", "--db", f"{url}?sslmode=prefer")
        assert listed.exit_code == 0 and json.loads(listed.stdout) == []
        for bad, says in (("sslmode=maybe", "unsupported sslmode"), ("timeout=3", "timeout")):
            line = one_line_error(run("clusters", "list", "--db", f"{url}?{bad}"))
            assert says in line


@pytest.mark.parametrize(
    "args",
    [
        ("licenses", "set", "acme", "--host-units", "nan", "--expires", "2031-01-01"),
        ("licenses", "set", "acme", "--host-units", "1e309", "--expires", "2031-01-01"),
        ("licenses", "set", "acme", "--host-units", "inf", "--expires", "2031-01-01"),
        ("licenses", "set", "acme", "--host-units", "-1", "--expires", "2031-01-01"),
        ("licenses", "set", "acme", "--host-units", "2e9", "--expires", "2031-01-01"),
        ("licenses", "set", "acme", "--host-units", "5", "--expires", "99999-01-01"),
        ("tokens", "revoke", "99999999999999999999999"),
        ("tokens", "revoke", "-1"),
        ("serve", "--max-body-bytes", "99999999999999999999"),
        ("serve", "--listen", "127.0.0.1:99999"),
        ("serve", "--workers", "1000"),
    ],
    ids=lambda arg: str(arg) if str(arg).startswith(("-", "9", "1", "2", "i", "n")) else "",
)
def test_numbers_a_caller_can_send_are_usage_errors(db: str, args: tuple[str, ...]) -> None:
    run("clusters", "create", "acme", "--geography", "EU", "--db", db)
    one_line_error(run(*args, "--db", db), code=2)
    listed = json.loads(run("clusters", "list", "--json", "--db", db).stdout)
    assert listed[0]["license"] is None  # nothing changed


def test_a_token_id_past_the_column_is_not_found(db: str) -> None:
    assert "no staff token 2147483647" in one_line_error(
        run("tokens", "revoke", "2147483647", "--db", db)
    )


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////etc/passwd",  # a file that is no database
        "sqlite:////proc",  # a directory
        "sqlite:////nonexistent/dir/mc.db",
        "postgresql://u@127.0.0.1:99999/db",
        "postgresql://u@127.0.0.1:abc/db",
        "postgresql://u@[::1/db",
        "postgresql://u@127.0.0.1:1/db",  # nothing listens
        "mysql://u@h/db",
        "",
    ],
)
@pytest.mark.parametrize(
    "command",
    [("clusters", "list"), ("alerts", "list"), ("users", "list"), ("tokens", "list"),
     ("audit", "verify"), ("users", "disable", "x"), ("licenses", "set", "a", "--host-units",
     "1", "--expires", "2031-01-01"), ("clusters", "create", "a", "--geography", "EU")],
    ids=lambda c: "-".join(c[:2]),
)  # fmt: skip
def test_every_db_option_refuses_a_bad_database_in_one_line(
    command: tuple[str, ...], url: str
) -> None:
    before = Path("/etc/passwd").stat().st_mode
    one_line_error(run(*command, "--db", url))
    assert Path("/etc/passwd").stat().st_mode == before  # never touched


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("MISSION_CONTROL_HEALTH_INTERVAL_S", "inf", "health_interval_s"),
        ("MISSION_CONTROL_HEALTH_INTERVAL_S", "1e300", "health_interval_s"),
        ("MISSION_CONTROL_ALERTS", '{"silent_after_intervals": 1e30}', "silent_after"),
        ("MISSION_CONTROL_TRUSTED_PROXIES", "not json", "trusted_proxies"),
        ("MISSION_CONTROL_SECRETS_KEY_FILE", "/nonexistent/key", "secrets key file"),
        ("MISSION_CONTROL_SECRETS_KEY", "short", "secrets_key"),
    ],
)
def test_settings_from_the_environment_are_one_line(
    db: str, variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    stdin = "Violet-harbour-42-kites\n" * 2
    result = CliRunner().invoke(
        main, ["users", "add", "ann", "--role", "operator", "--db", db], input=stdin
    )
    assert named in one_line_error(result).lower()
