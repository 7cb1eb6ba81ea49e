"""Checks of the deployment files under infra/, without Docker or a cluster.

Commands are parsed by the real command-line parsers of Celery, gunicorn and Django, so an
option, subcommand or queue that does not exist fails here rather than at deploy time.
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from shop.celery import Queues
from tests.source_code import imported_modules

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S_BASE = INFRA / "k8s" / "base"
GPU_OVERLAY = INFRA / "k8s" / "overlays" / "gpu"
DOCKERFILE = INFRA / "Dockerfile"
DOCKERFILE_GPU = INFRA / "Dockerfile.gpu"

# Variables that a library reads rather than the settings; each is set on purpose.
LIBRARY_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",  # Django: the settings module (the image sets it)
    "HF_HOME",  # huggingface_hub: where the model cache baked into the image lives
    "HF_HUB_OFFLINE",  # huggingface_hub: never reach the model hub at run time
    "PGPASSWORD",  # libpq: the database password when DATABASE_URL carries none (Compose)
}
# Variables of the image's own runtime, set only in the Dockerfiles.
IMAGE_VARIABLES = {
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "NVIDIA_DRIVER_CAPABILITIES",  # the NVIDIA container runtime: which driver libraries to mount
}
# Without these the settings fall back to the embedded, single-machine defaults.
PRODUCTION_VARIABLES = {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME"}
# MinIO is not AWS: Compose also needs its endpoint and keys.
COMPOSE_PRODUCTION_VARIABLES = PRODUCTION_VARIABLES | {
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
APP_SERVICES = {"web", "worker-vision", "worker-default", "beat", "migrate"}
APP_IMAGES = {"shop-the-look", "shop-the-look-gpu"}
KUBERNETES_VERSION = "1.30.0"
HOST = socket.gethostname()


# --- reading the files -------------------------------------------------------------------------


def yaml_documents(path: Path) -> list:
    return list(yaml.safe_load_all(path.read_text()))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        assert name not in values, f"{path.name}: {name} set twice"
        values[name] = value
    return values


@cache
def settings_variables() -> frozenset[str]:
    """Names the settings read: env.<type>("NAME", ...), env("NAME"), os.environ / os.getenv."""
    names = set()
    for path in sorted((REPO / "shop" / "settings").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = node.func
                reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "env"
                    and func.attr != "read_env"
                )
                reads_os = isinstance(func, ast.Attribute) and (
                    (func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os")
                    or (func.attr == "get" and ast.unparse(func.value) == "os.environ")
                )
                if reads_env or reads_os:
                    names.add(node.args[0].value)
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                if isinstance(node.slice, ast.Constant):
                    names.add(node.slice.value)
    return frozenset(names)


def settings_default(name: str):
    """The literal default of env.<type>("NAME", default=...) in the settings, or None."""
    for path in sorted((REPO / "shop" / "settings").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func.value) == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == name
            ):
                for keyword in node.keywords:
                    if keyword.arg == "default":
                        return ast.literal_eval(keyword.value)
    return None


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, f"{path.name} ends inside a continued line"
    return instructions


def final_stage(instructions):
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def dockerfile_cmd(path: Path) -> list[str]:
    cmds = [args for keyword, args in final_stage(dockerfile_instructions(path)) if keyword == "CMD"]
    assert cmds, f"{path.name} has no CMD"
    return json.loads(cmds[-1])  # exec form: no shell between the container and the process


def dockerfile_healthcheck(path: Path) -> list[str] | str:
    checks = [args for keyword, args in final_stage(dockerfile_instructions(path)) if keyword == "HEALTHCHECK"]
    assert checks, f"{path.name} has no HEALTHCHECK"
    command = re.sub(r"^(--\S+\s+)*CMD\s+", "", checks[-1])
    return json.loads(command) if command.startswith("[") else command


def dockerfile_env(path: Path) -> dict[str, str]:
    values = {}
    for keyword, args in final_stage(dockerfile_instructions(path)):
        if keyword == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                values[name] = value
    return values


def dockerfile_user(path: Path) -> str:
    users = [args for keyword, args in final_stage(dockerfile_instructions(path)) if keyword == "USER"]
    assert users, f"{path.name}: the final stage runs as root"
    return users[-1]


def requirement_pin(name: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}==(\S+)", line.strip())
        if match:
            return match.group(1)
    raise AssertionError(f"requirements.txt does not pin {name}")


@cache
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


@cache
def compose_env_example() -> dict[str, str]:
    return read_env_file(INFRA / ".env.example")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?message}, ${NAME:-default} and $$ substitution."""

    def substitute(match):
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if operator in (":?", "?"):
            assert variables.get(name), f"compose needs {name}: {argument}"
        if not variables.get(name) and operator in (":-", "-"):
            return argument
        return variables.get(name, "")

    value = re.sub(r"(?<!\$)\$\{(\w+)(?:(:?[?-])([^}]*))?\}", substitute, value)
    return value.replace("$$", "$")


def service_environment(service: dict) -> dict[str, str]:
    """What a Compose service's container gets: its env_file, then its environment."""
    values = {}
    env_files = service.get("env_file", [])
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        # infra/.env is the operator's copy of infra/.env.example.
        assert env_file == ".env", f"unexpected env_file {env_file}"
        values.update(compose_env_example())
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    values.update({name: interpolate(str(value), compose_env_example()) for name, value in environment.items()})
    return values


def compose_command(name: str, service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return dockerfile_cmd(REPO / service["build"]["dockerfile"])
    return command if isinstance(command, list) else shlex.split(command)


@cache
def base_kustomization() -> dict:
    return yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())


@cache
def base_resources() -> tuple[dict, ...]:
    documents = []
    for resource in base_kustomization()["resources"]:
        documents += [doc for doc in yaml_documents(K8S_BASE / resource) if doc]
    return tuple(documents)


def of_kind(kind: str, documents=None) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in (documents or base_resources()) if doc["kind"] == kind}


def generator_values(kind: str, name: str) -> dict[str, str]:
    """A generated ConfigMap's or Secret's keys; for an uncommitted secret file, its .example."""
    key = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}[kind]
    generators = {g["name"]: g for g in base_kustomization().get(key, [])}
    assert name in generators, f"no {kind} {name} generated by kustomization.yaml"
    values = {}
    for env_file in generators[name]["envs"]:
        path = K8S_BASE / env_file
        if kind == "Secret":
            path = path.with_name(path.name + ".example")
        assert path.exists(), f"{path.relative_to(REPO)} is missing"
        values.update(read_env_file(path))
    return values


def pod_specs(documents=None) -> dict[str, dict]:
    """Pod specs of the Deployments and Jobs, by workload name."""
    specs = {}
    for doc in documents or base_resources():
        if doc["kind"] in ("Deployment", "Job"):
            specs[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]
    return specs


def all_containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def container_environment(container: dict) -> dict[str, str]:
    values = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(generator_values("ConfigMap", source["configMapRef"]["name"]))
        if "secretRef" in source:
            values.update(generator_values("Secret", source["secretRef"]["name"]))
    for item in container.get("env", []):
        values[item["name"]] = item.get("value", "")
    return values


def strategic_merge(base, patch):
    """The part of a strategic merge patch the GPU overlay uses: maps merge, lists of named
    items merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        merged = [dict(item) for item in base]
        by_name = {item.get("name"): i for i, item in enumerate(merged)}
        for item in patch:
            if item["name"] in by_name:
                merged[by_name[item["name"]]] = strategic_merge(merged[by_name[item["name"]]], item)
            else:
                merged.append(item)
        return merged
    return patch


@cache
def gpu_resources() -> tuple[dict, ...]:
    kustomization = yaml.safe_load((GPU_OVERLAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    documents = [copy.deepcopy(doc) for doc in base_resources()]
    for patch in kustomization["patches"]:
        if "path" in patch:
            (patch_doc,) = yaml_documents(GPU_OVERLAY / patch["path"])
            matches = [
                i
                for i, doc in enumerate(documents)
                if doc["kind"] == patch_doc["kind"] and doc["metadata"]["name"] == patch_doc["metadata"]["name"]
            ]
            assert matches, f"{patch['path']} patches a {patch_doc['kind']} that the base does not have"
            documents[matches[0]] = strategic_merge(documents[matches[0]], patch_doc)
        else:
            target = patch["target"]
            matches = [
                doc
                for doc in documents
                if doc["kind"] == target["kind"]
                and doc["metadata"]["name"] == target["name"]
                and doc["apiVersion"].split("/")[0] == target["group"]
            ]
            assert matches, f"a patch targets {target}, which the base does not have"
            for operation in yaml.safe_load(patch["patch"]):
                *parents, leaf = operation["path"].strip("/").split("/")
                node = matches[0]
                for part in parents:
                    node = node[part]
                assert operation["op"] == "replace" and leaf in node, f"nothing to replace at {operation['path']}"
                node[leaf] = operation["value"]
    return tuple(documents)


def parse_quantity(value) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * units.get(match.group(2), 1) if match.group(2) else float(match.group(1))


# --- checking commands -------------------------------------------------------------------------


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (`a && b`, `until a; do b; done`), redirections dropped."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    tokens = iter(lexer)
    for token in tokens:
        if token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        elif token in ("<", ">", ">>"):
            next(tokens)
        else:
            current.append(token)
    commands.append(current)
    keywords = {"until", "while", "do", "done", "then", "fi", "if", "exec"}
    result = []
    for command in commands:
        while command and command[0] in keywords:
            command = command[1:]
        while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", command[0]):
            command = command[1:]  # NAME=value before a command sets its environment
        if command:
            result.append(command)
    return result


def simple_commands(argv: list[str] | str, *, compose_file: bool = False) -> list[list[str]]:
    """A container command or health check as the simple commands it runs."""
    if isinstance(argv, str):
        script = argv
    elif argv[0] == "CMD-SHELL":
        script = argv[1]
    elif argv[0] == "CMD":
        return simple_commands(argv[1:], compose_file=compose_file)
    elif argv[0] in ("sh", "/bin/sh", "bash") and argv[1] == "-c":
        script = argv[2]
    else:
        return [list(argv)]  # exec form: no shell expands anything
    if compose_file:
        script = script.replace("$$", "$")
    return [[token.replace("${HOSTNAME}", HOST).replace("$HOSTNAME", HOST) for token in command]
            for command in shell_commands(script)]  # fmt: skip


def parse_celery(args: list[str]) -> tuple[str, dict]:
    """Parse a celery command line with Celery's own CLI; returns (subcommand, its options)."""
    import shop.celery
    from celery.app.utils import find_app
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as celery_cli

    try:
        context = celery_cli.make_context("celery", list(args))
        with warnings.catch_warnings():
            # Click 8.2 deprecates protected_args; Click 9 leaves the subcommand in args.
            warnings.simplefilter("ignore", DeprecationWarning)
            name, *sub_args = [*getattr(context, "protected_args", []), *context.args]
        subcommand = celery_cli.get_command(context, name)
        assert subcommand is not None, f"celery has no subcommand {name}"
        obj = CLIContext(app=shop.celery.app, no_color=True, workdir=None, quiet=True)
        sub_context = subcommand.make_context(name, sub_args, parent=context, obj=obj)
    except click.ClickException as exc:
        raise AssertionError(f"celery {' '.join(args)}: {exc.format_message()}") from exc
    assert context.params["app"] == "shop", f"celery -A {context.params['app']}: the app module is shop"
    assert find_app("shop") is shop.celery.app
    return name, sub_context.params


def check_command(argv: list[str]) -> dict:
    """Fails unless the command names a real program, subcommand, options and queues."""
    program, args = argv[0], argv[1:]
    if program == "celery":
        name, params = parse_celery(args)
        if name == "worker":
            assert params["queues"], f"{argv}: a worker names its queues with -Q"
            assert set(params["queues"]) <= set(Queues.ALL), f"{argv}: unknown queue; the queues are {Queues.ALL}"
            # The liveness checks ping celery@$HOSTNAME, so workers keep the default node name.
            assert params["hostname"] == f"celery@{HOST}", f"{argv}: -n changes the node name the probes ping"
        elif name == "inspect":
            assert params["command"] == "ping" and params["destination"] == [f"celery@{HOST}"], argv
        else:
            assert name == "beat", f"{argv}: unexpected celery subcommand"
        return {"program": "celery", "subcommand": name, **params}
    if program == "gunicorn":
        from gunicorn.config import Config

        try:
            options = Config().parser().parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"gunicorn rejects {args}") from exc
        assert options.args == ["shop.wsgi:application"], argv
        module, _, attribute = options.args[0].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
        return {"program": "gunicorn", "bind": options.bind, "keepalive": options.keepalive}
    if program == "python" and args[:1] == ["manage.py"]:
        from django.core.management import CommandError, get_commands, load_command_class

        name, *command_args = args[1:]
        commands = get_commands()
        assert name in commands, f"manage.py has no command {name}"
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        try:
            parser.parse_args(command_args)
        except (CommandError, SystemExit) as exc:
            raise AssertionError(f"manage.py {name} rejects {command_args}: {exc}") from exc
        return {"program": "manage.py", "subcommand": name}
    if program == "python" and args[:1] == ["-c"]:
        compile(args[1], "<python -c>", "exec")
        return {"program": "python -c", "code": args[1]}
    assert program == "sleep", f"unexpected program in {argv}"
    return {"program": program}


def checked(argv, *, compose_file: bool = False) -> list[dict]:
    return [check_command(command) for command in simple_commands(argv, compose_file=compose_file)]


# --- every file --------------------------------------------------------------------------------


def test_every_yaml_file_under_infra_parses():
    paths = sorted([*INFRA.rglob("*.yaml"), *INFRA.rglob("*.yml")])
    assert len(paths) >= 10
    for path in paths:
        documents = yaml_documents(path)
        assert documents, f"{path} is empty"
        for document in documents:
            assert isinstance(document, dict), f"{path}: a document that is not a mapping"


def test_the_settings_parser_finds_what_the_settings_read():
    names = settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME"} <= names
    assert not LIBRARY_VARIABLES & names, "a variable the settings read needs no allowlist entry"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    entries = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "var", "bench/out", ".pytest_cache", "**/.env", "infra/k8s/**/*.env"} <= entries


# --- Dockerfiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_GPU], ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_and_copies_only_the_virtualenv(path):
    instructions = dockerfile_instructions(path)
    stages = [args.split() for keyword, args in instructions if keyword == "FROM"]
    assert len(stages) >= 3  # models, builder, runtime
    assert stages[-1][-1] == "runtime"
    runtime = final_stage(instructions)
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert not any(keyword == "RUN" and "pip install" in args for keyword, args in runtime)


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_GPU], ids=lambda p: p.name)
def test_dockerfile_runs_as_a_numeric_non_root_user(path):
    user = dockerfile_user(path)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: numeric, so that runAsNonRoot can check it"
    assert gid.isdigit() and int(gid) != 0


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_by_requirements() -> set[str]:
    """The distributions `pip install -r requirements.txt` brings: the pins and what they require."""
    from importlib import metadata

    from packaging.requirements import Requirement

    todo = [_normalised(re.split(r"[=\[<>~ ]", line.strip())[0])
            for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_normalised(requirement.name))
    return seen


def test_the_image_installs_every_library_the_application_imports():
    # The images install requirements.txt only; requirements-dev.txt is for tests and benchmarks.
    from importlib import metadata

    distributions = metadata.packages_distributions()
    installed = _installed_by_requirements()
    missing = {}
    for package in ("shop", "catalog", "vision"):
        for path in (REPO / package).rglob("*.py"):
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("shop", "catalog", "vision"):
                    continue
                names = {_normalised(d) for d in distributions.get(top, [])}
                if not names & installed:
                    missing.setdefault(top, str(path.relative_to(REPO)))
    assert not missing, f"imported by the application but not installed by requirements.txt: {missing}"


@pytest.mark.parametrize(("path", "variant"), [(DOCKERFILE, "cpu"), (DOCKERFILE_GPU, "cu130")], ids=["cpu", "gpu"])
def test_dockerfile_installs_the_pinned_torch_build(path, variant):
    torch, torchvision = requirement_pin("torch"), requirement_pin("torchvision")
    assert (torch, torchvision) == ("2.14.1", "0.29.1")
    runs = [args for keyword, args in dockerfile_instructions(path) if keyword == "RUN"]
    torch_install = [run for run in runs if "torch==" in run]
    assert len(torch_install) == 1
    install = torch_install[0]
    assert f"--index-url https://download.pytorch.org/whl/{variant} " in install
    assert f" torch=={torch} " in install and f" torchvision=={torchvision} " in install
    # torch first, then requirements.txt, whose pins the torch build already satisfies
    assert install.index("torch==") < install.index("-r /tmp/requirements.txt")


def test_dockerfile_collects_static_files_at_build_without_a_database(tmp_path):
    runs = [args for keyword, args in final_stage(dockerfile_instructions(DOCKERFILE)) if keyword == "RUN"]
    (run,) = [run for run in runs if "collectstatic" in run]
    (collectstatic,) = [c for c in shell_commands(run) if "collectstatic" in c]
    checked(collectstatic)
    # The RUN's own environment assignments, as the build would run it.
    prefix = run[: run.index("python manage.py collectstatic")]
    build_env = dict(token.split("=", 1) for token in shlex.split(prefix))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "SHOP_VAR_DIR": str(tmp_path / "var"),
        **build_env,
    }
    pgdata = tmp_path / "var" / "pgdata"
    try:
        result = subprocess.run(
            [sys.executable, *collectstatic[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        if pgdata.exists():
            from shop import embedded_db

            embedded_db.stop(pgdata)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "var" / "static" / "admin").is_dir()
    assert not pgdata.exists(), "the build started the embedded PostgreSQL"


def test_cpu_image_serves_the_api_and_checks_healthz_on_its_port():
    (gunicorn,) = checked(dockerfile_cmd(DOCKERFILE))
    assert gunicorn["program"] == "gunicorn"
    # idle keep-alive connections outlive a load balancer's 60 s: the server never closes one
    # just as a request arrives on it (connection resets under load with gunicorn's 2 s)
    assert gunicorn["keepalive"] > 60
    (healthcheck,) = checked(dockerfile_healthcheck(DOCKERFILE))
    url = re.search(r"http://([\d.]+):(\d+)(/\S*?)'", healthcheck["code"])
    assert url, healthcheck
    host, port, path = url.groups()
    assert path == "/healthz"
    assert any(bind.endswith(f":{port}") for bind in gunicorn["bind"])
    from django.urls import resolve

    assert resolve(path).func.view_class.__name__ == "HealthzApi"
    assert host in compose_env_example()["DJANGO_ALLOWED_HOSTS"].split(",")


def test_gpu_image_runs_a_vision_worker_and_pings_it():
    (worker,) = checked(dockerfile_cmd(DOCKERFILE_GPU))
    assert worker["subcommand"] == "worker" and worker["queues"] == [Queues.VISION]
    (ping,) = checked(dockerfile_healthcheck(DOCKERFILE_GPU))
    assert ping["subcommand"] == "inspect"


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_GPU], ids=lambda p: p.name)
def test_dockerfile_sets_only_known_variables(path):
    env = dockerfile_env(path)
    unknown = set(env) - settings_variables() - LIBRARY_VARIABLES - IMAGE_VARIABLES
    assert not unknown, f"{path.name} sets variables nothing reads: {unknown}"
    assert env["DJANGO_SETTINGS_MODULE"] == "shop.settings"
    assert env["HF_HUB_OFFLINE"] == "1"


# --- Compose -----------------------------------------------------------------------------------


def test_compose_app_services_are_built_from_the_dockerfile():
    services = compose()["services"]
    built = {name for name, service in services.items() if "build" in service}
    assert built == APP_SERVICES
    for name in built:
        assert services[name]["build"] == {"context": "..", "dockerfile": "infra/Dockerfile"}


def test_compose_app_services_set_only_variables_the_settings_read():
    for name in APP_SERVICES:
        unknown = set(service_environment(compose()["services"][name])) - settings_variables() - LIBRARY_VARIABLES
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_compose_app_services_have_every_production_variable():
    for name in APP_SERVICES:
        env = service_environment(compose()["services"][name])
        missing = {variable for variable in COMPOSE_PRODUCTION_VARIABLES if not env.get(variable)}
        assert not missing, f"{name} lacks {missing}"
        assert env["DJANGO_DEBUG"] == "false"
        assert env["DJANGO_SECRET_KEY"] != "dev-only-insecure-key-change-me"


def test_compose_interpolates_only_variables_of_its_env_file():
    for path in (INFRA / "compose.yaml", INFRA / "compose.gpu.yaml"):
        referenced = set(re.findall(r"(?<!\$)\$\{(\w+)", path.read_text()))
        assert referenced <= set(compose_env_example()), f"{path.name}: {referenced - set(compose_env_example())}"


def test_compose_urls_point_at_its_services_with_their_credentials():
    services = compose()["services"]
    app_env = service_environment(services["web"])

    database = urlsplit(app_env["DATABASE_URL"])
    postgres = service_environment(services["postgres"])
    assert database.hostname == "postgres" and (database.port or 5432) == 5432
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert (database.password or app_env.get("PGPASSWORD")) == postgres["POSTGRES_PASSWORD"]

    broker = urlsplit(app_env["CELERY_BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.port == 6379

    s3 = urlsplit(app_env["AWS_S3_ENDPOINT_URL"])
    minio = service_environment(services["minio"])
    assert s3.hostname == "minio" and s3.port == 9000
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        app_env["AWS_ACCESS_KEY_ID"],
        app_env["AWS_SECRET_ACCESS_KEY"],
    )
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter root passwords

    bucket = service_environment(services["bucket"])
    assert bucket["BUCKET"] == app_env["AWS_STORAGE_BUCKET_NAME"]
    mc_host = urlsplit(bucket["MC_HOST_shop"])
    assert (mc_host.hostname, mc_host.port) == ("minio", 9000)
    assert (mc_host.username, mc_host.password) == (app_env["AWS_ACCESS_KEY_ID"], app_env["AWS_SECRET_ACCESS_KEY"])


def test_compose_starts_services_in_order():
    services = compose()["services"]
    for name in APP_SERVICES - {"migrate"}:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    for name in ("web", "worker-vision", "worker-default"):
        assert services[name]["depends_on"]["bucket"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # migrate ends with build_creative_index, which writes its snapshot to the bucket
    assert services["migrate"]["depends_on"]["bucket"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    assert services["bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "minio"):
        assert services[name]["healthcheck"]["test"], name
    assert services["postgres"]["image"] == "pgvector/pgvector:pg17"


def test_compose_publishes_its_ports_on_this_machine_only():
    """The example's credentials are known to everyone: the API and MinIO (shopper photos) answer on
    loopback, not on every interface of the machine."""
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_example_takes_no_money_and_says_so():
    """Production settings refuse the test payment provider unless told the stack takes no money."""
    env = service_environment(compose()["services"]["web"])
    assert env["SHOP_ENVIRONMENT"] == "production" and not env.get("PAYMENT_PROVIDER")
    assert env["ALLOW_TEST_PAYMENTS"] == "true"


def test_kubernetes_behind_its_ingress_reads_client_addresses_through_the_proxy_and_names_a_gateway():
    """With no trusted proxy every request's address is the ingress controller's: one per-IP budget for
    the whole site. And a cluster takes money: it sets no ALLOW_TEST_PAYMENTS, so it must name its provider."""
    assert of_kind("Ingress")
    for workload, pod_spec in pod_specs().items():
        for container in pod_spec["containers"]:
            env = container_environment(container)
            assert int(env.get("THROTTLE_NUM_PROXIES", "0")) >= 1, workload
            assert "PAYMENT_PROVIDER" in env and env.get("ALLOW_TEST_PAYMENTS", "false") == "false", workload


def test_compose_postgres_can_build_hnsw_indexes():
    postgres = compose()["services"]["postgres"]
    command = postgres["command"]
    settings = dict(command[i + 1].split("=", 1) for i, token in enumerate(command) if token == "-c")
    maintenance_work_mem = parse_quantity(settings["maintenance_work_mem"].replace("GB", "Gi").replace("MB", "Mi"))
    assert maintenance_work_mem >= 2 * 2**30
    # A parallel build keeps its graph in /dev/shm, up to maintenance_work_mem.
    assert int(settings["max_parallel_maintenance_workers"]) >= 1
    assert parse_quantity(postgres["shm_size"].replace("gb", "Gi")) >= maintenance_work_mem


def test_compose_commands_exist():
    services = compose()["services"]
    for name in APP_SERVICES:
        checked(compose_command(name, services[name]), compose_file=True)
        healthcheck = services[name].get("healthcheck", {})
        if not healthcheck.get("disable"):
            test = healthcheck.get("test") or dockerfile_healthcheck(DOCKERFILE)
            checked(test, compose_file=True)
    assert [c["subcommand"] for c in checked(compose_command("migrate", services["migrate"]))] == [
        "migrate", "build_creative_index"]
    assert checked(compose_command("web", services["web"]))[0]["program"] == "gunicorn"
    assert checked(compose_command("beat", services["beat"]))[0]["subcommand"] == "beat"


def test_compose_workers_consume_every_queue_and_are_health_checked():
    services = compose()["services"]
    consumed = {}
    for name in APP_SERVICES:
        for command in checked(compose_command(name, services[name])):
            if command.get("subcommand") == "worker":
                consumed[name] = set(command["queues"])
                pings = checked(services[name]["healthcheck"]["test"], compose_file=True)
                assert pings[0]["subcommand"] == "inspect", name
    assert consumed == {"worker-vision": {Queues.VISION}, "worker-default": {Queues.DEFAULT, Queues.REPORTS}}
    time_limit = int(compose_env_example()["VISION_TASK_TIME_LIMIT"])
    grace = re.fullmatch(r"(\d+)([ms])", services["worker-vision"]["stop_grace_period"])
    assert int(grace.group(1)) * (60 if grace.group(2) == "m" else 1) > time_limit


def test_compose_gpu_override_runs_the_vision_worker_on_a_gpu():
    override = yaml.safe_load((INFRA / "compose.gpu.yaml").read_text())["services"]
    assert set(override) == {"worker-vision"}
    worker = override["worker-vision"]
    assert worker["build"]["dockerfile"] == "infra/Dockerfile.gpu"
    assert (REPO / worker["build"]["dockerfile"]).exists()
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert set(worker["environment"]) <= settings_variables()


def test_compose_bucket_service_applies_the_lifecycle_rule():
    bucket = compose()["services"]["bucket"]
    (mount,) = bucket["volumes"]
    source, target, _ = mount.split(":")
    assert (INFRA / source).resolve() == INFRA / "s3-lifecycle.json"
    script = " ".join(bucket["command"])
    assert "mc mb --ignore-existing" in script and "mc ilm rule import " in script and f"< {target}" in script


# --- S3 lifecycle ------------------------------------------------------------------------------


def test_lifecycle_rule_expires_shopper_photos_and_matches_the_readme():
    lifecycle = json.loads((INFRA / "s3-lifecycle.json").read_text())
    rule, snapshots, uploads = lifecycle["Rules"]
    # a direct upload that never became a scan (the app gave up, the scan was refused) is the shopper's
    # original photo, GPS and all: it goes a day later, as nothing else deletes it
    assert uploads["Status"] == "Enabled" and uploads["Filter"] == {"Prefix": "uploads/"}
    assert uploads["Expiration"] == {"Days": 1} and uploads["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1
    assert settings_default("UPLOAD_URL_EXPIRE_SECONDS") < 86_400, "an upload URL outlives its object's rule"
    assert snapshots["Status"] == "Enabled" and snapshots["Filter"] == {"Prefix": "creative-index/"}
    assert snapshots["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1 and "Expiration" not in snapshots
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": "scans/"}
    default = settings_default("SCAN_RETENTION_DAYS")
    assert isinstance(default, int), "the settings read SCAN_RETENTION_DAYS with a default"
    retention = {
        env.get("SCAN_RETENTION_DAYS") for env in (compose_env_example(), generator_values("ConfigMap", "shop-config"))
    } - {None}
    assert rule["Expiration"] == {"Days": int(retention.pop()) if retention else default}
    assert not retention, "Compose and Kubernetes keep photos for different periods"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1
    readme_blocks = re.findall(r"```json\n(.*?)```", (INFRA / "README.md").read_text(), re.S)
    assert lifecycle in [json.loads(block) for block in readme_blocks]


def test_readme_names_only_files_that_exist():
    readme = (INFRA / "README.md").read_text()
    paths = set(re.findall(r"\binfra/[\w./-]+\w", readme))
    assert "infra/compose.yaml" in paths and "infra/k8s/base" in paths
    for path in paths:
        target = REPO / path
        # infra/.env and the secret files are the operator's copies of their .example files
        assert target.exists() or target.with_name(target.name + ".example").exists(), path


# --- Kubernetes --------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    manifests = {p.name for p in K8S_BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(base_kustomization()["resources"]) == manifests
    for generator in base_kustomization()["configMapGenerator"]:
        for env_file in generator["envs"]:
            assert (K8S_BASE / env_file).exists()
    gitignore = (INFRA / ".gitignore").read_text().split()
    for generator in base_kustomization()["secretGenerator"]:
        for env_file in generator["envs"]:
            assert (K8S_BASE / f"{env_file}.example").exists()
            assert f"k8s/**/{env_file}" in gitignore, f"{env_file} holds secrets and must not be committed"


def test_kubernetes_manifests_validate_against_the_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = [*base_resources(), *of_kind("Deployment", gpu_resources()).values()]
    documents += [
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, field: generator_values(kind, name)}
        for kind, key, field in (
            ("ConfigMap", "configMapGenerator", "data"),
            ("Secret", "secretGenerator", "stringData"),
        )
        for name in (g["name"] for g in base_kustomization()[key])
    ]
    validated = 0
    for document in documents:
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked by the tests below
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {where}: {exc.message}")
        validated += 1
    assert validated >= 12


def test_every_container_has_an_app_image_and_bounded_resources():
    images = {image["name"] for image in base_kustomization()["images"]}
    gpu_images = {image["name"] for image in yaml.safe_load((GPU_OVERLAY / "kustomization.yaml").read_text())["images"]}
    for documents, known in ((base_resources(), images), (gpu_resources(), images | gpu_images)):
        for workload, pod_spec in pod_specs(documents).items():
            for container in all_containers(pod_spec):
                where = f"{workload}/{container['name']}"
                assert container["image"] in APP_IMAGES & known, f"{where}: image {container['image']}"
                requests, limits = container["resources"]["requests"], container["resources"]["limits"]
                for resource in ("cpu", "memory"):
                    assert parse_quantity(requests[resource]) <= parse_quantity(limits[resource]), where


def test_pods_run_as_the_images_non_root_user_under_the_restricted_policy():
    uid, _, gid = dockerfile_user(DOCKERFILE).partition(":")
    assert dockerfile_user(DOCKERFILE_GPU) == dockerfile_user(DOCKERFILE)
    assert of_kind("Namespace")["shop"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload, pod_spec in pod_specs().items():
        security = pod_spec["securityContext"]
        assert security["runAsNonRoot"] is True, workload
        assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid)), workload
        assert security["seccompProfile"]["type"] == "RuntimeDefault", workload
        assert pod_spec["automountServiceAccountToken"] is False, workload
        for container in all_containers(pod_spec):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, workload
            assert context["capabilities"]["drop"] == ["ALL"], workload
        for container in pod_spec["containers"]:
            if container["securityContext"].get("readOnlyRootFilesystem"):
                mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
                volumes = {volume["name"]: volume for volume in pod_spec.get("volumes", [])}
                assert "emptyDir" in volumes[mounts["/tmp"]], f"{workload}: a read-only root needs a writable /tmp"


def test_workloads_set_only_variables_the_settings_read_and_every_production_one():
    for workload, pod_spec in pod_specs().items():
        for container in all_containers(pod_spec):
            env = container_environment(container)
            unknown = set(env) - settings_variables() - LIBRARY_VARIABLES
            assert not unknown, f"{workload}/{container['name']} sets variables nothing reads: {unknown}"
            missing = {variable for variable in PRODUCTION_VARIABLES if not env.get(variable)}
            assert not missing, f"{workload}/{container['name']} lacks {missing}"
            assert env["DJANGO_DEBUG"] == "false"
    for deployment in of_kind("Deployment", gpu_resources()).values():
        for container in all_containers(deployment["spec"]["template"]["spec"]):
            assert set(container_environment(container)) <= settings_variables() | LIBRARY_VARIABLES


def test_kubernetes_commands_exist_and_workers_consume_every_queue():
    consumed = {}
    for documents in (base_resources(), gpu_resources()):
        for workload, pod_spec in pod_specs(documents).items():
            for container in all_containers(pod_spec):
                argv = container.get("command", []) + container.get("args", [])
                assert argv, f"{workload}/{container['name']}: the image's default command is not assumed here"
                for command in checked(argv):
                    if command.get("subcommand") == "worker":
                        consumed[workload] = set(command["queues"])
                        probe = container["livenessProbe"]["exec"]["command"]
                        assert checked(probe)[0]["subcommand"] == "inspect", workload
    assert consumed == {"worker-vision": {Queues.VISION}, "worker-default": {Queues.DEFAULT, Queues.REPORTS}}
    (migrate,) = pod_specs()["migrate"]["containers"]
    assert [c["subcommand"] for c in checked(migrate["command"])] == ["migrate", "build_creative_index"]


def test_workloads_wait_for_migrations():
    for workload, pod_spec in pod_specs().items():
        if workload == "migrate":
            continue
        first, *_ = pod_spec["initContainers"]
        assert ["python", "manage.py", "migrate", "--check"] in simple_commands(first["command"]), workload


def test_vision_workers_wait_for_the_creative_index_snapshot_of_their_code():
    """After the migrations (it reads the creatives), in the base and on GPU nodes, bounded by a timeout
    that still lets the migrate Job build a 10,000-creative index (7-10 minutes)."""
    for documents in (base_resources(), gpu_resources()):
        for workload, pod_spec in pod_specs(documents).items():
            waits = [n for n, init in enumerate(pod_spec.get("initContainers", []))
                     if any(c.get("subcommand") == "wait_for_creative_index" for c in checked(init["command"]))]
            assert waits == ([1] if workload == "worker-vision" else []), workload
            for n in waits:
                command = pod_spec["initContainers"][n]["command"]
                assert int(command[command.index("--timeout") + 1]) >= 600 and "--strict" not in command


def test_web_probes_reach_healthz_and_readyz_through_allowed_hosts():
    from django.urls import resolve

    (web,) = of_kind("Deployment")["web"]["spec"]["template"]["spec"]["containers"]
    port_names = {port["name"] for port in web["ports"]}
    allowed_hosts = generator_values("ConfigMap", "shop-config")["DJANGO_ALLOWED_HOSTS"].split(",")
    expected = {"startupProbe": "HealthzApi", "livenessProbe": "HealthzApi", "readinessProbe": "ReadyzApi"}
    for probe_name, view in expected.items():
        probe = web[probe_name]["httpGet"]
        assert resolve(probe["path"].partition("?")[0]).func.view_class.__name__ == view, probe_name
        assert probe["port"] in port_names, probe_name
        headers = {header["name"]: header["value"] for header in probe.get("httpHeaders", [])}
        assert headers.get("Host") in allowed_hosts, f"{probe_name}: Django answers 400 to a Host it does not allow"
    (gunicorn,) = checked(web["command"])
    assert any(bind.endswith(f":{port['containerPort']}") for bind in gunicorn["bind"] for port in web["ports"])
    assert gunicorn["keepalive"] > 60, "the ingress keeps idle upstream connections for 60 s"
    # a shared dependency's outage (the broker restarting) does not take every web pod out of service
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz?scope=web"


def test_deployment_selectors_match_their_pods():
    for documents in (base_resources(), gpu_resources()):
        for name, deployment in of_kind("Deployment", documents).items():
            selector = deployment["spec"]["selector"]["matchLabels"]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), name
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in of_kind("Deployment").values()]
    assert len(set(selectors)) == len(selectors), "two Deployments select the same pods"


def matching_deployments(selector: dict) -> list[str]:
    return [
        name
        for name, deployment in of_kind("Deployment").items()
        if selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ]


def test_services_and_ingress_reach_the_web_pods():
    config = generator_values("ConfigMap", "shop-config")
    services = of_kind("Service")
    for name, service in services.items():
        (deployment,) = matching_deployments(service["spec"]["selector"])
        ports = {p["name"] for c in of_kind("Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}  # fmt: skip
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no container port {port['targetPort']}"
    (ingress,) = of_kind("Ingress").values()
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in config["DJANGO_ALLOWED_HOSTS"].split(",")
        assert f"https://{rule['host']}" in config["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


def test_ingress_accepts_the_largest_upload():
    from django.conf import settings

    body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - settings.UPLOAD_MAX_BYTES
    upload_max = int(generator_values("ConfigMap", "shop-config")["UPLOAD_MAX_BYTES"])
    (ingress,) = of_kind("Ingress").values()
    proxy_limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert parse_quantity(proxy_limit.replace("m", "Mi")) > upload_max + body_limit


def test_autoscalers_target_deployments_and_never_the_same_one():
    deployments = of_kind("Deployment")
    hpa_targets = []
    for name, hpa in of_kind("HorizontalPodAutoscaler").items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, name
        assert "replicas" not in deployments[target["name"]]["spec"], "an apply would reset the autoscaled count"
        assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu"}
        hpa_targets.append(target["name"])
    scaled_targets = [so["spec"]["scaleTargetRef"]["name"] for so in of_kind("ScaledObject").values()]
    for target in scaled_targets:
        assert target in deployments and "replicas" not in deployments[target]["spec"], target
    assert hpa_targets == ["web"] and scaled_targets == ["worker-vision"]


def test_keda_scales_vision_workers_on_their_redis_queue():
    (scaled,) = of_kind("ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    queue = trigger["metadata"]["listName"]
    assert queue in Queues.ALL
    assert int(trigger["metadata"]["listLength"]) >= 1
    target = of_kind("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]
    (worker,) = target["spec"]["template"]["spec"]["containers"]
    assert queue in checked(worker["command"])[0]["queues"], "KEDA watches a queue its target does not consume"

    broker = urlsplit(generator_values("Secret", "shop-secrets")["CELERY_BROKER_URL"])
    assert trigger["metadata"]["databaseIndex"] == (broker.path.strip("/") or "0")
    authentication = of_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    references = {ref["parameter"]: ref for ref in authentication["spec"]["secretTargetRef"]}
    assert set(references) == {"address", "password"}
    (secret_name,) = {ref["name"] for ref in references.values()}
    secret = generator_values("Secret", secret_name)
    assert secret[references["address"]["key"]] == f"{broker.hostname}:{broker.port}"
    assert secret[references["password"]["key"]] == broker.password
    generator = {g["name"]: g for g in base_kustomization()["secretGenerator"]}[secret_name]
    assert generator["options"]["disableNameSuffixHash"] is True, "TriggerAuthentication names it verbatim"
    for workload, pod_spec in pod_specs().items():
        for container in all_containers(pod_spec):
            refs = {s.get("secretRef", {}).get("name") for s in container.get("envFrom", [])}
            assert secret_name not in refs, f"{workload}: KEDA's secret is not the application's environment"


def test_disruption_budgets_cover_web_and_workers():
    covered = set()
    for name, budget in of_kind("PodDisruptionBudget").items():
        (deployment,) = matching_deployments(budget["spec"]["selector"]["matchLabels"])
        covered.add(deployment)
    assert covered == {"web", "worker-vision", "worker-default"}


def test_beat_runs_exactly_once():
    beat = of_kind("Deployment")["beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    (container,) = beat["template"]["spec"]["containers"]
    assert checked(container["command"])[0]["subcommand"] == "beat"


def test_vision_workers_outlive_their_longest_task_when_stopped():
    time_limit = int(generator_values("ConfigMap", "shop-config")["VISION_TASK_TIME_LIMIT"])
    pod_spec = of_kind("Deployment")["worker-vision"]["spec"]["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] > time_limit


def test_migration_job_runs_once_to_completion():
    job = of_kind("Job")["migrate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] >= 600


def test_gpu_overlay_puts_vision_workers_on_gpu_nodes():
    base_deployments = of_kind("Deployment")
    gpu_deployments = of_kind("Deployment", gpu_resources())
    assert set(gpu_deployments) == set(base_deployments)
    spec = gpu_deployments["worker-vision"]["spec"]["template"]["spec"]
    base_spec = base_deployments["worker-vision"]["spec"]["template"]["spec"]
    # A patch item whose name the base lacks would add a container instead of changing one.
    assert [c["name"] for c in all_containers(spec)] == [c["name"] for c in all_containers(base_spec)]
    (worker,) = spec["containers"]
    assert worker["image"] == "shop-the-look-gpu"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == worker["resources"]["limits"]["nvidia.com/gpu"]
    assert container_environment(worker)["VISION_DEVICE"] == "cuda"
    assert worker["command"] == base_spec["containers"][0]["command"]
    assert spec["nodeSelector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    for name in set(gpu_deployments) - {"worker-vision"}:
        assert gpu_deployments[name] == base_deployments[name], f"{name} changed by the GPU overlay"
    (scaled,) = of_kind("ScaledObject", gpu_resources()).values()
    assert scaled["spec"]["maxReplicaCount"] < of_kind("ScaledObject")["worker-vision"]["spec"]["maxReplicaCount"]
