"""Deployment files: Kubernetes manifests against the API schemas, compose and Dockerfile basics."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
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


def test_dockerfile_runs_as_a_user_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER fits\n" in text and "HEALTHCHECK" in text and "/healthz" in text
