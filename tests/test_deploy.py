"""Deployment files: Kubernetes manifests against the API schemas, compose and Dockerfile basics."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_kubernetes_manifests_pass_the_schema(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_deployment_probes_the_service_endpoints() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "deployment.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler"}


def test_compose_runs_fits_with_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    fits, redis = compose["services"]["fits"], compose["services"]["redis"]
    assert fits["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert fits["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in redis


def test_compose_passes_every_setting_of_env_example() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    passed = set(compose["services"]["fits"]["environment"])
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    # Where to listen and FITS_CACHE_DIR are the container's business, not the user's.
    assert documented - passed <= {"HOST", "FITS_CACHE_DIR"}


def test_compose_file_validates() -> None:
    # `docker compose config` where the v2 plugin exists, else docker-compose (apt, via scripts/test.sh).
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True,
                            check=False) if shutil.which("docker") else None
    if plugin is not None and plugin.returncode == 0:
        command = ["docker", "compose"]
    else:
        assert shutil.which("docker-compose"), "docker-compose is not installed: run bash scripts/test.sh, which installs it"
        command = ["docker-compose"]
    out = subprocess.run([*command, "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ,
                         "HF_TOKEN": "", "GITHUB_WEBHOOK_SECRET": ""}, check=False)
    assert out.returncode == 0, out.stderr


def test_dockerfile_runs_as_a_user_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER fits\n" in text and "HEALTHCHECK" in text and "/healthz" in text
