"""The Helm chart (deploy/helm/parley), rendered by Helm's own engine and checked object by object
against the Kubernetes schemas (kubernetes-validate, offline, strict: unknown fields fail)."""

import copy
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

HELM = Path(__file__).resolve().parents[2] / "deploy" / "helm"
sys.path.insert(0, str(HELM))
import render  # noqa: E402

PRODUCTION = render.load_values([render.CHART / "values-production.yaml"])
EVERYTHING = {  # every switch on: chart-made Secret and ConfigMap, bundled PostgreSQL and Redis, ingress
    "existingSecret": "",
    "secrets": {"SECRET_KEY": "s" * 50, "PARLEY_ENCRYPTION_KEYS": "k"},
    "env": {"LOG_LEVEL": "INFO", "WEBCHAT_TOKEN_SECONDS": 3600},
    "postgresql": {"enabled": True, "password": "pw"},
    "redis": {"enabled": True},
    "ingress": {"enabled": True, "tls": {"clusterIssuer": "letsencrypt"}},
}
VALUES = {"default": {}, "production": PRODUCTION, "everything": EVERYTHING}


def by_kind_name(objects):
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def container(obj):
    return obj["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module", params=list(VALUES), ids=list(VALUES))
def rendered(request):
    return request.param, render.render(copy.deepcopy(VALUES[request.param]))


def test_every_object_is_valid_kubernetes(rendered):
    _, objects = rendered
    version = latest_version()
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_a_wrong_object():
    """The check above can fail: a misspelt field and a string where a number belongs are caught."""
    web = by_kind_name(render.render())[("Deployment", "parley-web")]
    broken = copy.deepcopy(web)
    broken["spec"]["replicsa"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, latest_version(), strict=True)
    broken = copy.deepcopy(web)
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "soon"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, latest_version(), strict=True)


def test_roles_replicas_probes_and_budgets(rendered):
    _, objects = rendered
    objs = by_kind_name(objects)
    beat = objs[("Deployment", "parley-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert objs[("Deployment", "parley-connectors")]["spec"]["replicas"] == 2
    web = container(objs[("Deployment", "parley-web")])
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for role in ("web", "worker"):
        hpa = objs[("HorizontalPodAutoscaler", f"parley-{role}")]
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"parley-{role}"
        assert "replicas" not in objs[("Deployment", f"parley-{role}")]["spec"]  # the HPA owns it
    for role in ("web", "worker", "connectors"):
        pdb = objs[("PodDisruptionBudget", f"parley-{role}")]
        deployment = objs[("Deployment", f"parley-{role}")]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert ("PodDisruptionBudget", "parley-beat") not in objs  # one pod: a budget would block every drain
    worker = objs[("Deployment", "parley-worker")]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 300  # tasks finish on SIGTERM


def test_migrations_run_as_a_hook_before_the_new_pods(rendered):
    name, objects = rendered
    job = by_kind_name(objects)[("Job", "parley-migrate")]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert "pre-upgrade" in hooks
    assert ("post-install" if name == "everything" else "pre-install") in hooks
    assert container(job)["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_settings_come_from_the_existing_secret_or_from_values(rendered):
    name, objects = rendered
    objs = by_kind_name(objects)
    env_from = container(objs[("Deployment", "parley-web")])["envFrom"]
    if name == "everything":
        secret = objs[("Secret", "parley-env")]
        assert secret["stringData"]["SECRET_KEY"] == "s" * 50
        assert secret["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"  # before the migrate hook
        assert {"secretRef": {"name": "parley-env"}} in env_from
        assert {"configMapRef": {"name": "parley-config"}} in env_from
        assert objs[("ConfigMap", "parley-config")]["data"]["WEBCHAT_TOKEN_SECONDS"] == "3600"
    else:
        assert {"secretRef": {"name": "parley-env"}} in env_from
        assert not [o for o in objects if o["kind"] == "Secret"]


def test_ingress_has_tls_and_keeps_websockets_open():
    objs = by_kind_name(render.render(copy.deepcopy(PRODUCTION)))
    ingress = objs[("Ingress", "parley")]
    assert ingress["spec"]["tls"] == [{"hosts": ["chat.example.com"], "secretName": "parley-tls"}]
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert notes["cert-manager.io/cluster-issuer"] == "letsencrypt"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] in {name for kind, name in objs if kind == "Service"}


def test_bundled_postgresql_and_redis_are_off_by_default_and_wired_when_on():
    assert not [o for o in render.render() if o["kind"] == "StatefulSet"]
    objs = by_kind_name(render.render(copy.deepcopy(EVERYTHING)))
    assert ("StatefulSet", "parley-postgresql") in objs and ("StatefulSet", "parley-redis") in objs
    env = {e["name"]: e for e in container(objs[("Deployment", "parley-worker")])["env"]}
    assert (
        env["DATABASE_URL"]["value"] == "postgres://parley:$(PARLEY_BUNDLED_DB_PASSWORD)@parley-postgresql:5432/parley"
    )
    assert env["REDIS_URL"]["value"] == "redis://parley-redis:6379/0"


@pytest.mark.parametrize(
    "values,message",
    [
        ({"existingSecret": ""}, "Set existingSecret"),
        ({"postgresql": {"enabled": True}}, "postgresql.enabled needs postgresql.password"),
    ],
)
def test_missing_settings_fail_the_render_with_a_clear_message(values, message):
    with pytest.raises(Exception, match=message):
        render.render(values)


def test_the_plain_manifest_is_the_chart_rendered():
    """deploy/k8s/parley.yaml is generated: after a chart change run python deploy/helm/render.py."""
    committed = [d for d in yaml.safe_load_all(render.MANIFEST.read_text()) if d]
    assert committed == render.render(), "deploy/k8s/parley.yaml is stale: run python deploy/helm/render.py"
