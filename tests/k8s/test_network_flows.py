"""Who can reach whom: the rendered NetworkPolicies evaluated against the real pod labels.

The pods are those of the rendered Deployments and StatefulSets of each overlay and the
pods the compiled pipeline's tasks become (labels from the pipeline's Kubernetes platform
spec, in namespace ``kubeflow``), plus the pods the manifests expect from outside:
kube-prometheus-stack's Prometheus, the Istio ingress gateway, a labelled client and
unlabelled strangers. ``netpol.py`` decides each connection as a network plugin would.
Every flow the system needs must be admitted, and the flows that must not exist denied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import OVERLAYS, by_kind, one
from netpol import Pod, connection_allowed, selects

from pipelines.qdtrack_pipeline import PIPELINE_YAML

PIPELINE_NAMESPACE = "kubeflow"
OUTSIDE = {
    "monitoring": {},
    "istio-system": {},
    "kubeflow": {},
    "default": {},
    "clients": {"qdtrack.io/clients": "allowed"},
}


# ----------------------------------------------------------------------- the evaluator


def _policy(namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


NS = {"a": {"kubernetes.io/metadata.name": "a", "team": "x"}, "b": {"team": "y"}}
WEB = Pod("web", "a", {"app": "web"}, {"http": 8080})
DB = Pod("db", "a", {"app": "db"}, {"sql": 5432})
OTHER = Pod("other", "b", {"app": "web"})


@pytest.mark.parametrize(
    ("policies", "source", "target", "port", "allowed"),
    [
        ([], OTHER, DB, 5432, True),  # nothing selects db: not isolated
        ([_policy("a", {"podSelector": {"matchLabels": {"app": "db"}}})], WEB, DB, 5432, False),
        # a podSelector peer alone: the policy's own namespace only
        ([_policy("a", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {
            "matchLabels": {"app": "web"}}}]}]})], OTHER, DB, 5432, False),
        ([_policy("a", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {
            "matchLabels": {"app": "web"}}}]}]})], WEB, DB, 5432, True),
        # namespace AND pod selector in one peer, vs two peers (OR)
        ([_policy("a", {"podSelector": {}, "ingress": [{"from": [{
            "namespaceSelector": {"matchLabels": {"team": "y"}},
            "podSelector": {"matchLabels": {"app": "db"}}}]}]})], OTHER, DB, 5432, False),
        ([_policy("a", {"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"team": "y"}}},
            {"podSelector": {"matchLabels": {"app": "db"}}}]}]})], OTHER, DB, 5432, True),
        # ports: a named port of the target, a range, another protocol
        ([_policy("a", {"podSelector": {}, "ingress": [{"ports": [{"port": "sql"}]}]})],
         OTHER, DB, 5432, True),
        ([_policy("a", {"podSelector": {}, "ingress": [{"ports": [{"port": "sql"}]}]})],
         OTHER, WEB, 5432, False),
        ([_policy("a", {"podSelector": {}, "ingress": [{"ports": [{"port": 5000,
            "endPort": 6000}]}]})], OTHER, DB, 5432, True),
        ([_policy("a", {"podSelector": {}, "ingress": [{"ports": [{"port": 5432,
            "protocol": "UDP"}]}]})], OTHER, DB, 5432, False),
        # egress isolation of the source applies too
        ([_policy("a", {"podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"]})], WEB, DB, 5432, False),
        ([_policy("a", {"podSelector": {"matchLabels": {"app": "web"}}, "egress": [
            {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]})], WEB, DB, 5432, True),
        # an ipBlock peer never matches a pod here
        ([_policy("a", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
            "cidr": "0.0.0.0/0"}}]}]})], WEB, DB, 5432, False),
        # inside one pod: loopback
        ([_policy("a", {"podSelector": {}})], DB, DB, 5432, True),
    ],
)  # fmt: skip
def test_evaluator_semantics(
    policies: list[dict[str, Any]], source: Pod, target: Pod, port: int, allowed: bool
) -> None:
    assert connection_allowed(policies, source, target, port, namespace_labels=NS) is allowed


def test_selector_expressions() -> None:
    labels = {"tier": "web", "env": "prod"}
    assert selects({}, labels)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
                   labels)  # fmt: skip
    assert not selects({"matchExpressions": [{"key": "env", "operator": "NotIn",
                                              "values": ["prod"]}]}, labels)  # fmt: skip
    assert selects({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, labels)
    assert not selects(None, labels)


# ----------------------------------------------------------------------- the system


def _workload_pods(objects: list[dict[str, Any]]) -> dict[str, Pod]:
    pods = {}
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        template = obj["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        pods[obj["metadata"]["name"]] = Pod(
            obj["metadata"]["name"], obj["metadata"]["namespace"],
            template["metadata"].get("labels", {}), ports,
        )  # fmt: skip
    return pods


def _pipeline_pods() -> dict[str, Pod]:
    """The pods of the compiled pipeline's container steps, with their platform labels."""
    docs = list(yaml.safe_load_all(Path(PIPELINE_YAML).read_text(encoding="utf-8")))
    executors = docs[0]["deploymentSpec"]["executors"]
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    pods = {}
    for name in executors:
        labels = platform.get(name, {}).get("podMetadata", {}).get("labels", {})
        pods[name.removeprefix("exec-")] = Pod(name, PIPELINE_NAMESPACE, labels)
    return pods


def _namespaces(serving_namespace: str) -> dict[str, dict[str, str]]:
    names = {**OUTSIDE, serving_namespace: {}}
    return {n: {"kubernetes.io/metadata.name": n, **labels} for n, labels in names.items()}


@pytest.fixture(params=OVERLAYS)
def system(request: pytest.FixtureRequest, rendered: dict) -> dict[str, Any]:
    objects = rendered[request.param]
    workloads = _workload_pods(objects)
    serving = workloads["qdtrack-serving"]
    tasks = _pipeline_pods()
    pods = {
        "serving": serving,
        "other replica": Pod("qdtrack-serving-2", serving.namespace, serving.labels,
                             serving.ports),
        "redis": workloads.get("qdtrack-redis", Pod("redis", "redis-external")),
        "deploy step": tasks["deploy"],
        "train step": tasks["train"],
        "gate step": tasks["gate"],
        "prometheus": Pod("prometheus-0", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "gateway": Pod("istio-ingressgateway", "istio-system", {"istio": "ingressgateway"}),
        "client": Pod("camera-feed", "clients", {"qdtrack.io/client": "true"}),
        "stranger here": Pod("debug", serving.namespace, {}),
        "stranger": Pod("anything", "default", {}),
        "impostor": Pod("fake-deployer", "default", {"qdtrack.io/deployer": "true"}),
    }  # fmt: skip
    return {
        "overlay": request.param,
        "policies": by_kind(objects, "NetworkPolicy"),
        "pods": pods,
        "namespaces": _namespaces(serving.namespace),
        "objects": objects,
    }


def _allowed(system: dict[str, Any], source: str, target: str, port: int) -> bool:
    pods = system["pods"]
    return connection_allowed(
        system["policies"], pods[source], pods[target], port,
        namespace_labels=system["namespaces"],
    )  # fmt: skip


REQUIRED = [
    ("deploy step", "serving", 8000),  # Triton HTTP: model control, verification inference
    ("serving", "serving", 8001),  # sidecar -> Triton gRPC, inside the pod
    ("serving", "redis", 6379),  # sidecar -> Redis (tracker state)
    ("prometheus", "serving", 8080),  # the sidecar's /metrics
    ("prometheus", "serving", 8002),  # Triton's metrics
    ("gateway", "serving", 8080),  # ingress -> sidecar
    ("client", "serving", 8080),  # a labelled client in an allowed namespace -> sidecar
]
FORBIDDEN = [
    ("train step", "redis", 6379),
    ("deploy step", "redis", 6379),
    ("stranger here", "redis", 6379),
    ("stranger", "redis", 6379),
    ("client", "redis", 6379),
    ("train step", "serving", 8000),
    ("gate step", "serving", 8000),
    ("stranger here", "serving", 8000),
    ("client", "serving", 8000),
    ("gateway", "serving", 8000),
    ("prometheus", "serving", 8000),
    ("impostor", "serving", 8000),  # the deployer's label outside the pipeline's namespace
    ("deploy step", "serving", 8001),
    ("other replica", "serving", 8001),
    ("client", "serving", 8002),
    ("stranger", "serving", 8080),
    ("stranger here", "serving", 8080),
]


def test_every_flow_the_system_needs_is_admitted(system: dict[str, Any]) -> None:
    for source, target, port in REQUIRED:
        if target == "redis" and system["pods"]["redis"].namespace == "redis-external":
            continue  # gpu: Redis is outside the cluster (checked below)
        assert _allowed(system, source, target, port), (
            f"{system['overlay']}: {source} -> {target}:{port} is denied"
        )


def test_flows_that_must_not_exist_are_denied(system: dict[str, Any]) -> None:
    for source, target, port in FORBIDDEN:
        if target == "redis" and system["pods"]["redis"].namespace == "redis-external":
            continue
        assert not _allowed(system, source, target, port), (
            f"{system['overlay']}: {source} -> {target}:{port} is admitted"
        )


def test_the_deployer_label_is_the_one_the_policy_admits(system: dict[str, Any]) -> None:
    """Only the deploy step carries the label; without it the deploy could not load."""
    labelled = [n for n, p in _pipeline_pods().items() if p.labels.get("qdtrack.io/deployer")]
    assert labelled == ["deploy"]
    unlabelled = Pod("deploy", PIPELINE_NAMESPACE, {})
    assert not connection_allowed(
        system["policies"], unlabelled, system["pods"]["serving"], 8000,
        namespace_labels=system["namespaces"],
    )  # fmt: skip


def test_serving_pods_may_reach_outside_redis(system: dict[str, Any]) -> None:
    """No egress policy isolates the serving pods (gpu's Redis is a managed instance)."""
    outside = Pod("managed-redis", "default", {})
    assert _allowed({**system, "pods": {**system["pods"], "x": outside}}, "serving", "x", 6379)
    assert one(system["objects"], "Service", "qdtrack-redis")
