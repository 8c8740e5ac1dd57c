"""Every overlay builds with kustomize and validates: built-in kinds with
``kubernetes-validate --strict`` for current Kubernetes versions (offline schemas), custom
resources against the JSON Schemas vendored in k8s/schemas/.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from k8s_helpers import K8S, OVERLAYS, by_kind, one

#: The newest Kubernetes the installed kubernetes-validate knows, and the oldest we support.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json",
    ("networking.istio.io/v1", "DestinationRule"): "destinationrule_v1.json",
}
BUILTIN_PREFIXES = (
    "apps/",
    "autoscaling/",
    "policy/",
    "networking.k8s.io/",
    "rbac.authorization.k8s.io/",
)


def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((K8S / "schemas" / SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _is_builtin(obj: dict[str, Any]) -> bool:
    return obj["apiVersion"] == "v1" or obj["apiVersion"].startswith(BUILTIN_PREFIXES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_stack(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy", "DestinationRule", "ServiceMonitor", "PrometheusRule",
        "ConfigMap", "Role", "RoleBinding", "ServiceAccount",
    } <= kinds  # fmt: skip
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "duplicate objects"
    namespaced = [o for o in objects if o["kind"] not in {"Namespace", "PersistentVolume"}]
    assert {o["metadata"].get("namespace") for o in namespaced} == {
        {"dev": "kubeflow", "gpu": "qdtrack"}[overlay]
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_validate_strictly(rendered: dict, overlay: str, version: str) -> None:
    builtin = [o for o in rendered[overlay] if _is_builtin(o)]
    assert len(builtin) >= 15
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {exc.message}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_vendored_schemas(rendered: dict, overlay: str) -> None:
    custom = [o for o in rendered[overlay] if not _is_builtin(o)]
    assert {(o["apiVersion"], o["kind"]) for o in custom} == set(SCHEMAS)
    for obj in custom:
        errors = list(_crd_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj))
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors[0].message}"
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[-1], strict=True)


def _mutations() -> list[tuple[str, str, Any]]:
    """(kind, description, function breaking a valid object) — the schemas must refuse each."""

    def misspelt_endpoint_key(o: dict) -> None:
        o["spec"]["endpoints"][0]["intervall"] = "15s"

    def bad_interval(o: dict) -> None:
        o["spec"]["endpoints"][0]["interval"] = "15 seconds"

    def no_selector(o: dict) -> None:
        del o["spec"]["selector"]

    def rule_without_expr(o: dict) -> None:
        del o["spec"]["groups"][0]["rules"][0]["expr"]

    def alert_and_record(o: dict) -> None:
        o["spec"]["groups"][0]["rules"][0]["record"] = "x:y"

    def label_not_a_string(o: dict) -> None:
        o["spec"]["groups"][0]["rules"][0]["labels"]["severity"] = 3

    def two_hash_keys(o: dict) -> None:
        o["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["useSourceIp"] = True

    def ring_size_as_string(o: dict) -> None:
        o["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["ringHash"] = {
            "minimumRingSize": "1k"
        }

    def no_host(o: dict) -> None:
        del o["spec"]["host"]

    return [
        ("ServiceMonitor", "misspelt endpoint key", misspelt_endpoint_key),
        ("ServiceMonitor", "interval not a duration", bad_interval),
        ("ServiceMonitor", "no selector", no_selector),
        ("PrometheusRule", "rule without expr", rule_without_expr),
        ("PrometheusRule", "both alert and record", alert_and_record),
        ("PrometheusRule", "label value not a string", label_not_a_string),
        ("DestinationRule", "two hash keys", two_hash_keys),
        ("DestinationRule", "ring size not an integer", ring_size_as_string),
        ("DestinationRule", "no host", no_host),
    ]


@pytest.mark.parametrize(("kind", "what", "mutate"), _mutations(), ids=[m[1] for m in _mutations()])
def test_vendored_schemas_refuse_mistakes(
    rendered: dict, kind: str, what: str, mutate: Any
) -> None:
    obj = copy.deepcopy(by_kind(rendered["gpu"], kind)[0])
    mutate(obj)
    validator = _crd_validator(obj["apiVersion"], kind)
    assert list(validator.iter_errors(obj)), f"the {kind} schema accepted: {what}"


def test_strict_validation_catches_an_unknown_field(rendered: dict) -> None:
    deployment = copy.deepcopy(one(rendered["gpu"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_base_builds_on_its_own() -> None:
    from k8s_helpers import render

    objects = render(K8S / "base")
    assert one(objects, "Deployment", "qdtrack-serving")
    assert all("namespace" not in o["metadata"] for o in objects), (
        "base must stay namespace-neutral"
    )


def test_schema_files_are_listed() -> None:
    on_disk = {p.name for p in (K8S / "schemas").glob("*.json")}
    assert on_disk == set(SCHEMAS.values())
