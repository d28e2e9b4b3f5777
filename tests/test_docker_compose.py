"""Static checks of the container deployment: docker-compose.yml, Dockerfile, .env.example, .dockerignore.

No Docker engine is needed (none is available on the development machines): the files are parsed and
checked for the properties the deployment relies on. Whether the containers really start together is
not tested here; see docs/deploy.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.search_attributes import registration_flags

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "worker", "web", "mailpit", "mail-ingest"}
ONE_SHOT = {"temporal-admin-tools", "temporal-create-namespace", "migrate"}
APP_SERVICES = {"migrate", "worker", "web", "mail-ingest"}

# Files whose environment variables the deployment must provide (or document) in .env.example.
SETTINGS_SOURCES = [
    ROOT / "activities" / "settings.py",
    ROOT / "activities" / "db" / "base.py",
    ROOT / "protocols" / "__init__.py",
    ROOT / "starter" / "connection.py",
    ROOT / "starter" / "codec.py",
    ROOT / "starter" / "codec_server.py",
    ROOT / "starter" / "web" / "settings.py",
]
CODEC_SERVER_ONLY = ROOT / "starter" / "codec_server.py"
"""The codec server is not part of the Compose deployment yet: the worker does not read its settings."""
WEB_ONLY = ROOT / "starter" / "web" / "settings.py"
"""The web app's own settings: the web service reads them, the worker does not."""
ENV_READ = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|os\.environ\[|_env)\(?\s*["']([A-Z][A-Z0-9_]*)["']"""
)
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
ONLY_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^{}]*)?\}$")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict)
    return found


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _image_tag(image: str) -> tuple[str, str]:
    """``("repo/name", "tag")``; the tag is empty when the reference has none."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no colon at all, or the colon belonged to a registry port
        return reference, ""
    return name, tag


def _published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each published port as ``(host_ip, host_port, container_port)``."""
    result: list[tuple[str, str, str]] = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result.append((str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"])))
            continue
        parts = re.sub(r"\$\{[^}]*\}", "VAR", str(port)).split(":")  # `${PORT:-8080}` holds a colon
        if len(parts) == 3:
            result.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            result.append(("", parts[0], parts[1]))
        else:
            result.append(("", "", parts[0]))
    return result


def _volume_sources(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts: list[tuple[str, str]] = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts.append((str(volume.get("source", "")), str(volume["target"])))
        else:
            source, _, rest = str(volume).partition(":")
            mounts.append((source, rest.split(":", 1)[0]))
    return mounts


def test_the_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT


def test_every_image_is_pinned_to_an_explicit_tag(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        assert "$" not in image, f"{name}: image {image!r} must not come from a variable"
        _, tag = _image_tag(image)
        assert tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and not tag.startswith("latest"), f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: tag {tag!r} is not an explicit version"


def test_images_are_the_intended_ones(services: dict[str, dict[str, Any]]) -> None:
    images = {name: _image_tag(s["image"]) for name, s in services.items() if "image" in s}
    assert images["postgresql"][0] == "postgres"
    assert re.fullmatch(r"16\.\d+", images["postgresql"][1]), "PostgreSQL 16 with its minor version pinned"
    assert images["temporal"][0] == "temporalio/server"
    assert images["temporal-admin-tools"][0] == "temporalio/admin-tools"
    assert images["temporal-create-namespace"][0] == "temporalio/admin-tools"
    assert images["temporal-ui"][0] == "temporalio/ui"
    assert images["mailpit"][0] == "axllent/mailpit"
    # The schema tool's version must match the server's, or the schema would not be the one it expects.
    server_version = images["temporal"][1]
    assert images["temporal-admin-tools"][1] == server_version
    assert images["temporal-create-namespace"][1] == server_version


def test_the_deprecated_auto_setup_image_is_not_used(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "auto-setup" not in str(service.get("image", "")), name
    assert "temporalio/auto-setup" not in COMPOSE_FILE.read_text(encoding="utf-8")


def test_app_services_are_built_from_the_projects_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for name in APP_SERVICES:
        service = services[name]
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context, dockerfile) == (".", "Dockerfile"), name
        assert _image_tag(service["image"]) == ("escalation-engine", version), name
    assert services["migrate"]["command"] == [
        "python",
        "-m",
        "activities.db.migrate",
        "upgrade",
        "--app-role",
        "${ESCALATION_DB_APP_USER:?set ESCALATION_DB_APP_USER in .env}",
    ]
    assert services["worker"]["command"] == ["python", "worker.py"]


def test_ports_are_published_only_where_intended_and_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name: _published(s) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"temporal", "temporal-ui", "web", "mailpit"}
    assert [p[2] for p in published["temporal"]] == ["7233"]
    assert [p[2] for p in published["temporal-ui"]] == ["8080"]
    assert [p[2] for p in published["mailpit"]] == ["8025"]  # the web UI; SMTP stays internal
    assert [p[2] for p in published["web"]] == ["8000"]
    for name, ports in published.items():
        for host_ip, _, _ in ports:
            assert host_ip == "127.0.0.1", f"{name}: publish on 127.0.0.1 only, not {host_ip or 'all'}"


def test_dependencies_wait_for_the_right_conditions(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "postgresql": {},
        "temporal-admin-tools": {"postgresql": "service_healthy"},
        "temporal": {
            "postgresql": "service_healthy",
            "temporal-admin-tools": "service_completed_successfully",
        },
        "temporal-create-namespace": {"temporal": "service_healthy"},
        "temporal-ui": {"temporal": "service_healthy"},
        "migrate": {"postgresql": "service_healthy"},
        "worker": {
            "temporal": "service_healthy",
            "temporal-create-namespace": "service_completed_successfully",
            "migrate": "service_completed_successfully",
        },
        "web": {
            "temporal": "service_healthy",
            "temporal-create-namespace": "service_completed_successfully",
            "migrate": "service_completed_successfully",
        },
        "mailpit": {},
        "mail-ingest": {
            "temporal": "service_healthy",
            "temporal-create-namespace": "service_completed_successfully",
            "migrate": "service_completed_successfully",
        },
    }
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions (the long form)"
        conditions = {dep: spec["condition"] for dep, spec in depends.items()}
        assert conditions == expected[name], name


def test_long_running_services_have_healthchecks_and_restart(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name}: no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name}: a one-shot job must not be restarted"


def test_the_worker_healthcheck_is_valid_python(services: dict[str, dict[str, Any]]) -> None:
    test = services["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "$" not in test[3], "Compose would interpolate it"
    compile(test[3], "worker-healthcheck", "exec")


def test_the_schema_job_sets_up_both_temporal_databases_on_postgres12(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services["temporal-admin-tools"]
    assert _environment(job)["SQL_PLUGIN"] == "postgres12"
    script = "\n".join(job["command"]) if isinstance(job["command"], list) else job["command"]
    for database, folder in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {database} create-database" in script
        assert f"--db {database} setup-schema -v 0.0" in script
        assert f"--db {database} update-schema -d" in script
        assert f"{folder}/versioned" in script
    assert "/etc/temporal/schema/postgresql/v12" in script


def test_the_temporal_server_runs_on_postgresql(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["DBNAME"] == "temporal"
    assert env["VISIBILITY_DBNAME"] == "temporal_visibility"


def _referenced(value: str) -> set[str]:
    return set(INTERPOLATION.findall(value))


def test_the_migrate_job_connects_as_the_owner_and_the_worker_as_a_role_that_owns_nothing(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES:
        assert "env_file" not in services[name], f"{name}: .env holds the owner's password; list variables"
    migrate_env = _environment(services["migrate"])
    assert set(migrate_env) == {"ESCALATION_DATABASE_URL"}
    assert _referenced(migrate_env["ESCALATION_DATABASE_URL"]) == {
        "ESCALATION_OWNER_DATABASE_URL",
        "ESCALATION_DB_OWNER",
        "ESCALATION_DB_OWNER_PASSWORD",
        "ESCALATION_DB_NAME",
    }
    worker_env = _environment(services["worker"])
    assert _referenced(worker_env["ESCALATION_DATABASE_URL"]) == {
        "ESCALATION_DATABASE_URL",
        "ESCALATION_DB_APP_USER",
        "ESCALATION_DB_APP_PASSWORD",
        "ESCALATION_DB_NAME",
    }
    # No other secret reaches the worker: not the owner's, the superuser's or Temporal's.
    worker_secrets = {v for value in worker_env.values() for v in _referenced(value) if "PASSWORD" in v}
    assert worker_secrets == {"ESCALATION_DB_APP_PASSWORD", "ESCALATION_SMTP_PASSWORD"}
    # The owner and the application role are distinct roles in the example settings.
    example = _env_example()
    assert example["ESCALATION_DB_OWNER"] and example["ESCALATION_DB_APP_USER"]
    assert example["ESCALATION_DB_OWNER"] != example["ESCALATION_DB_APP_USER"]


def test_the_worker_gets_every_setting_the_code_reads(services: dict[str, dict[str, Any]]) -> None:
    worker_env = _environment(services["worker"])
    missing = _variables_read_by_the_code(exclude={CODEC_SERVER_ONLY, WEB_ONLY}) - set(worker_env)
    assert not missing, f"docker-compose.yml's worker lacks {sorted(missing)}"
    for key, value in worker_env.items():
        assert key in _referenced(value), f"worker: {key} must come from .env ({value!r})"


def test_the_postgres_init_script_creates_an_owner_and_a_worker_role_that_owns_nothing(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    script = compose["configs"]["postgres-init-roles"]["content"]
    for line in (
        """CREATE ROLE :"owner_user" LOGIN PASSWORD :'owner_password';""",
        """CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';""",
        """CREATE DATABASE :"app_db" OWNER :"owner_user";""",
        """REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;""",
        """GRANT CONNECT ON DATABASE :"app_db" TO :"app_user";""",
    ):
        assert line in script
    assert "SUPERUSER" not in script and "CREATEROLE" not in script
    for variable in ("ESCALATION_DB_OWNER", "ESCALATION_DB_APP_USER", "ESCALATION_DB_APP_PASSWORD"):
        assert f"$${{{variable}}}" in script
        assert variable in _environment(services["postgresql"])


def test_no_secret_is_written_in_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                assert ONLY_INTERPOLATION.match(value), f"{name}: {key} must come from .env, not {value!r}"
            for password in URL_PASSWORD.findall(value):
                assert password.startswith("${"), f"{name}: {key} has a password written in its URL"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    # KEY=value or KEY: value with an upper-case variable name and anything but an interpolation.
    literal = re.compile(
        r"\b[A-Z0-9_]*(?:PASSWORD|PWD|SECRET|TOKEN)[A-Z0-9_]*[=:]\s*(?![\"']*\$)[\"']?[^\s\"']"
    )
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        # Names inside an interpolation (`${X_PASSWORD:?...}`) are references, not assignments.
        bare = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*", "${", line)
        assert not literal.search(bare), f"literal secret in docker-compose.yml: {line.strip()!r}"


def test_every_interpolated_variable_is_in_env_example(compose: dict[str, Any]) -> None:
    lines = COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(INTERPOLATION.findall(text.replace("$$", "")))  # `$$` is a literal `$`
    missing = used - set(_env_example())
    assert not missing, f"docker-compose.yml uses variables .env.example does not list: {sorted(missing)}"


def test_named_volumes_are_declared_and_used(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    assert declared == {"postgres-data", "worker-data"}
    used: set[str] = set()
    for name, service in services.items():
        for source, _ in _volume_sources(service):
            if source.startswith((".", "/", "~")):
                pytest.fail(f"{name}: bind mount {source!r}; use a named volume")
            if source:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {sorted(declared - used)}"
    assert ("postgres-data", "/var/lib/postgresql/data") in _volume_sources(services["postgresql"])
    assert ("worker-data", "/data") in _volume_sources(services["worker"])


def test_dev_only_and_future_services_are_behind_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert services["mailpit"].get("profiles") == ["dev"]
    assert services["mail-ingest"].get("profiles") == ["mail"], "replies need the council's own mailbox"
    for name, service in services.items():
        if name not in ("mailpit", "mail-ingest"):
            assert not service.get("profiles"), f"{name} must start by default"
    assert "web" in services  # the web app starts by default, like the worker


def _variables_read_by_the_code(exclude: set[Path] | None = None) -> set[str]:
    names: set[str] = set()
    for source in SETTINGS_SOURCES:
        if source in (exclude or set()):
            continue
        names.update(ENV_READ.findall(source.read_text(encoding="utf-8")))
    return names


def test_env_example_lists_every_setting_the_code_reads() -> None:
    read = _variables_read_by_the_code()
    escalation = {name for name in read if name.startswith("ESCALATION_")}
    # A sanity check on the scan itself: these are certainly read.
    assert {"ESCALATION_DATABASE_URL", "ESCALATION_SMTP_PASSWORD", "ESCALATION_REPLY_DOMAIN"} <= escalation
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} <= read
    missing = read - set(_env_example())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_no_real_secrets() -> None:
    for key, value in _env_example().items():
        if SECRET_KEY.search(key):
            assert value == "" or value.startswith("change-me"), f".env.example: {key} must be a placeholder"
        for password in URL_PASSWORD.findall(value):
            assert password.startswith("change-me"), f".env.example: {key} has a real-looking password"


def test_dockerfile_pins_its_base_image_and_runs_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    bases = [line.split()[1] for line in instructions if line.upper().startswith("FROM ")]
    assert bases, "no FROM"
    for base in bases:
        repo, tag = _image_tag(base)
        assert repo == "python", base
        assert re.fullmatch(r"3\.11\.\d+-slim(?:-\w+)?", tag), f"{base}: pin python 3.11.N-slim"
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    assert any(re.search(r"\bpip install\b.*\s\.(\s|$)", line) for line in instructions), "pip install ."
    assert instructions[-1] == 'CMD ["python", "worker.py"]'


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    entries = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert {".env", ".git", ".venv", ".data", "node_modules"} <= entries


def test_the_image_carries_the_web_apps_assets_from_the_lock_file() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY package.json package-lock.json ./" in text
    assert "npm ci --omit=dev" in text  # the pinned versions, no dev packages (axe-core)
    assert (
        "COPY --from=build /src/node_modules/govuk-frontend/dist ./node_modules/govuk-frontend/dist" in text
    )


def test_the_namespace_job_registers_every_escalation_search_attribute(
    services: dict[str, dict[str, Any]],
) -> None:
    script = " ".join(services["temporal-create-namespace"]["command"])
    for pair in registration_flags()[1::2]:
        assert pair in script, f"docker-compose.yml's temporal-create-namespace job does not register {pair}"
    assert "temporal operator search-attribute create" in script


def test_the_web_app_is_served_as_the_application_role_with_its_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    web = services["web"]
    assert web["command"][:3] == ["python", "-m", "starter.web"]
    env = _environment(web)
    assert _referenced(env["ESCALATION_DATABASE_URL"]) == _referenced(
        _environment(services["worker"])["ESCALATION_DATABASE_URL"]
    ), "the web app writes the audit log as the worker's role, never the owner"
    wanted = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "ESCALATION_PAYLOAD_KEYS", "ESCALATION_DIRECTORY_DIR"}
    wanted |= _variables_read_by_the_code(exclude=set(SETTINGS_SOURCES) - {WEB_ONLY})
    missing = wanted - set(env)
    assert not missing, f"docker-compose.yml's web service lacks {sorted(missing)}"
    for key, value in env.items():
        assert key in _referenced(value), f"web: {key} must come from .env ({value!r})"
    assert env["ESCALATE_ENV"] == "${ESCALATE_ENV:-production}", "production unless .env says otherwise"
    secrets = {v for value in env.values() for v in _referenced(value) if SECRET_KEY.search(v)}
    assert secrets == {"ESCALATION_DB_APP_PASSWORD", "ESCALATE_SESSION_SECRET", "ESCALATE_OIDC_CLIENT_SECRET"}
    check = " ".join(web["healthcheck"]["test"])
    assert "/healthz" in check and "$" not in check
    compile(web["healthcheck"]["test"][3], "web-healthcheck", "exec")


def test_the_mail_ingester_runs_the_real_command_and_its_health_check_reads_what_it_touches(
    services: dict[str, dict[str, Any]],
) -> None:
    from starter.mail_ingest.cli import parser

    ingest = services["mail-ingest"]
    # Each ${NAME:-default} as its default, each ${NAME:?...} as a made-up value.
    command = [
        re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "x.example.org", part))
        for part in ingest["command"]
    ]
    assert command[:3] == ["escalate", "mail", "ingest"]
    args = parser().parse_args(command[3:])
    assert args.imap and args.imap_user and args.alive_file is not None and not args.once
    check = ingest["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"] and "$" not in check[3]
    compile(check[3], "mail-ingest-healthcheck", "exec")
    assert f"'{args.alive_file}'" in check[3], "the health check reads the file the ingester touches"
    env = _environment(ingest)
    assert _referenced(env["ESCALATION_DATABASE_URL"]) == _referenced(
        _environment(services["worker"])["ESCALATION_DATABASE_URL"]
    ), "as the worker's role, never the owner"
    assert {"ESCALATION_IMAP_PASSWORD", "ESCALATION_PAYLOAD_KEYS", "ESCALATION_SMTP_HOST"} <= set(env)
