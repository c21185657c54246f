"""The container and cluster packaging: the Dockerfile, compose.yaml with its nginx
config, and the Kubernetes manifests are well-formed and agree with Portway itself
(probe paths it serves, configs it loads, the port it listens on)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from portway.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SECRETS = {
    "PORTWAY_MASTER_KEY": "sk-master",
    "DATABASE_URL": "postgresql://portway:pw@postgres:5432/portway",
    "REDIS_URL": "redis://redis:6379/0",
}


def _manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(document), path
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def _loads(text: str, tmp_path: Path) -> None:
    path = tmp_path / "portway.yaml"
    path.write_text(text)
    settings = load_settings(path, environ=SECRETS)
    assert settings.redis_url == SECRETS["REDIS_URL"]
    assert settings.database_url.startswith("postgresql://")
    assert settings.limits.backend == "redis"


def test_the_dockerfile_builds_llama_apart_and_runs_slim_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.M)
    assert stages == ["build", "runtime"]
    build, runtime = text.split("AS runtime", 1)
    assert "build-essential" in build and "cmake" in build and "pip install ." in build
    assert "build-essential" not in runtime
    assert "COPY --from=build /opt/portway /opt/portway" in runtime
    assert "bubblewrap" in runtime
    assert re.search(r"^USER portway$", runtime, re.M)
    assert "useradd --system --uid 10001" in runtime
    healthcheck = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", runtime, re.M)
    assert healthcheck is not None and "/health/live" in healthcheck.group(1)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_compose_runs_two_replicas_behind_nginx(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    replicas = sorted(name for name in services if name.startswith("portway-"))
    assert replicas == ["portway-1", "portway-2"]
    assert {"postgres", "redis", "nginx"} <= set(services)
    for name in replicas:
        service = services[name]
        assert service["command"][:1] == ["serve"] and "--workers" in service["command"]
        assert set(service["depends_on"]) == {"postgres", "redis"}
        assert any(volume.startswith("files:") for volume in service["volumes"])
        # Replicas sharing the database share the server key.
        assert service["environment"]["PORTWAY_SERVER_KEY"].startswith("${PORTWAY_SERVER_KEY:?")
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == set(replicas)
    mounted = nginx["volumes"][0].split(":")[0]
    conf = (ROOT / mounted).read_text()
    upstream = re.search(r"upstream portway \{(.*?)\}", conf, re.S)
    assert upstream is not None
    assert re.findall(r"server ([\w-]+):8080", upstream.group(1)) == replicas
    assert "proxy_buffering off" in conf  # streams pass through as produced
    config = next(v for v in services["portway-1"]["volumes"] if "portway.yaml" in v)
    _loads((ROOT / config.split(":")[0]).read_text(), tmp_path)


def test_kubernetes_manifests_probe_what_portway_serves(tmp_path: Path) -> None:
    manifests = _manifests()
    assert {
        "ConfigMap/portway-config",
        "Secret/portway",
        "Deployment/portway",
        "Service/portway",
        "HorizontalPodAutoscaler/portway",
        "PersistentVolumeClaim/portway-files",
    } <= set(manifests)
    kustomized = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert all((K8S / name).is_file() for name in kustomized)

    pod = manifests["Deployment/portway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["ports"][0]["containerPort"] == 8080
    assert pod["securityContext"]["runAsNonRoot"] is True
    secret_keys = set(manifests["Secret/portway"]["stringData"])
    env = {item["name"]: item for item in container["env"]}
    # The replicas share one server key (audit checkpoints, sealed maps and items).
    for name in ("PORTWAY_MASTER_KEY", "PORTWAY_SERVER_KEY", "DATABASE_URL", "REDIS_URL"):
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] in secret_keys
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["PORTWAY_CONFIG"]["value"].startswith(mounted["config"])
    config = manifests["ConfigMap/portway-config"]["data"]["portway.yaml"]
    _loads(config, tmp_path)
    # The pod gets its whole drain before it is killed.
    server = yaml.safe_load(config)["server"]
    budget = server["unready_delay_seconds"] + server["drain_timeout_seconds"]
    assert pod["terminationGracePeriodSeconds"] > budget
    service = manifests["Service/portway"]["spec"]
    assert service["selector"] == manifests["Deployment/portway"]["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("path", ["/health/ready", "/health/live"])
def test_the_probed_paths_are_routes_of_portway(path: str) -> None:
    from portway.api import health

    assert path in {route.path for route in health.router.routes}  # type: ignore[attr-defined]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed (optional: apt-get install nginx-light)")
    # The compose service names resolve only inside compose's network.
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    (tmp_path / "nginx.conf").write_text(re.sub(r"portway-\d+:8080", "127.0.0.1:8080", conf))
    globals_ = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", globals_],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
