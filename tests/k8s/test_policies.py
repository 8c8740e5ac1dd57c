"""What the rendered manifests promise: security settings, network reachability, scaling,
probes, and that the pieces refer to each other correctly (selectors, ports, names, settings).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from k8s_helpers import OVERLAYS, by_kind, one, pod_specs

SERVING_LABELS = {"app.kubernetes.io/name": "qdtrack", "app.kubernetes.io/component": "serving"}
TRITON_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
SIDECAR_PORT = 8080


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _container(objects: list[dict], name: str) -> dict[str, Any]:
    spec = one(objects, "Deployment", "qdtrack-serving")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ----------------------------------------------------------------------------- security
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(rendered: dict, overlay: str) -> None:
    workloads = pod_specs(rendered[overlay])
    assert workloads
    for workload, spec in workloads:
        assert spec.get("automountServiceAccountToken") is False, workload
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", workload
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for c in _containers(spec):
            where = f"{overlay}/{workload}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot") is True, where
            assert isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("privileged"), where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"].get(kind, {})), f"{where}: {kind}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(rendered: dict, overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for c in _containers(spec):
            image = c["image"]
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{workload}/{c['name']}: {image} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{workload}/{c['name']}: {image}"


def test_gpu_overlay_requests_a_gpu_and_dev_does_not(rendered: dict) -> None:
    gpu = _container(rendered["gpu"], "triton")["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == "1" == gpu["requests"]["nvidia.com/gpu"]
    assert "--allow-gpu-metrics=true" in _container(rendered["gpu"], "triton")["args"]
    for c in one(rendered["dev"], "Deployment")["spec"]["template"]["spec"]["containers"]:
        assert "nvidia.com/gpu" not in str(c["resources"])


def test_triton_flags_agree_between_overlays(rendered: dict) -> None:
    dev, gpu = (set(_container(rendered[o], "triton")["args"]) for o in OVERLAYS)
    assert dev ^ gpu == {"--allow-gpu-metrics=false", "--allow-gpu-metrics=true"}
    for flag in (
        "--model-control-mode=explicit",
        "--load-model=qdtrack",
        "--grpc-address=127.0.0.1",
        "--model-repository=/models",
    ):
        assert flag in dev


# ----------------------------------------------------------------------------- pod wiring
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_ports_and_probes(rendered: dict, overlay: str) -> None:
    triton = _container(rendered[overlay], "triton")
    assert {p["name"]: p["containerPort"] for p in triton["ports"]} == TRITON_PORTS
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = triton["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # model load time
    mount = next(m for m in triton["volumeMounts"] if m["mountPath"] == "/models")
    assert mount["readOnly"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sidecar_talks_to_triton_on_localhost(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    sidecar = _container(objects, "sidecar")
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert [p["containerPort"] for p in sidecar["ports"]] == [SIDECAR_PORT]
    config_name = sidecar["envFrom"][0]["configMapRef"]["name"]
    settings = one(objects, "ConfigMap", config_name)["data"]
    assert settings["SIDECAR_TRITON_URL"] == f"127.0.0.1:{TRITON_PORTS['grpc']}"
    redis = next(e for e in sidecar["env"] if e["name"] == "SIDECAR_REDIS_URL")
    assert redis["valueFrom"]["secretKeyRef"]["key"] == "url"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sidecar_settings_exist_in_the_sidecar(
    rendered: dict, overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SIDECAR_* variable the manifests set is a field of serving.sidecar.settings,
    and the sidecar accepts the values from its environment as the pod gives them. No
    overlay sets how to use the model (resize, tracker): the served model's contract does."""
    from serving.sidecar.settings import Settings

    fields = {f"SIDECAR_{name.upper()}" for name in Settings.model_fields}
    sidecar = _container(rendered[overlay], "sidecar")
    config = one(rendered[overlay], "ConfigMap", sidecar["envFrom"][0]["configMapRef"]["name"])
    names = set(config["data"]) | {e["name"] for e in sidecar["env"]}
    assert names <= fields, f"unknown sidecar settings: {sorted(names - fields)}"
    for name, value in config["data"].items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.triton_url == "127.0.0.1:8001"
    assert settings.contract_overrides == {}
    from serving.sidecar.__main__ import RETIRED_VARIABLES

    assert not names & set(RETIRED_VARIABLES)


def test_dev_redis_secret_points_at_the_statefulset(rendered: dict) -> None:
    import base64

    objects = rendered["dev"]
    secret = next(
        s for s in by_kind(objects, "Secret") if s["metadata"]["name"].startswith("qdtrack-redis")
    )
    url = base64.b64decode(secret["data"]["url"]).decode()
    service = one(objects, "Service", "qdtrack-redis")
    assert url == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"
    statefulset = one(objects, "StatefulSet", "qdtrack-redis")
    assert _selects(
        service["spec"]["selector"], statefulset["spec"]["template"]["metadata"]["labels"]
    )


def test_production_redis_is_external(rendered: dict) -> None:
    objects = rendered["gpu"]
    assert not by_kind(objects, "StatefulSet")
    service = one(objects, "Service", "qdtrack-redis")
    assert service["spec"]["type"] == "ExternalName" and service["spec"]["externalName"]
    assert not [s for s in by_kind(objects, "Secret")], "production secrets stay out of git"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_the_pods_and_name_real_ports(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    template = one(objects, "Deployment", "qdtrack-serving")["spec"]["template"]
    port_names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
    for name in ("qdtrack-sidecar", "triton"):
        service = one(objects, "Service", name)
        assert _selects(service["spec"]["selector"], template["metadata"]["labels"])
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
    exposed = {p["port"] for s in by_kind(objects, "Service") for p in s["spec"].get("ports", [])}
    assert TRITON_PORTS["grpc"] not in exposed, "Triton's gRPC port must not be a Service port"


# ----------------------------------------------------------------------------- network policies
def _policies_for(objects: list[dict], labels: dict[str, str]) -> list[dict]:
    return [
        p for p in by_kind(objects, "NetworkPolicy")
        if _selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)
    ]  # fmt: skip


def _allowed(policies: list[dict]) -> dict[int, list[dict]]:
    """port -> the peers (from-clauses) allowed to reach it."""
    allowed: dict[int, list[dict]] = {}
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                allowed.setdefault(port["port"], []).extend(rule["from"])
    return allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    for policy in by_kind(objects, "NetworkPolicy"):
        # each policy picks our pods only: safe in a shared namespace (dev runs in kubeflow)
        assert policy["spec"]["podSelector"].get("matchLabels"), policy["metadata"]["name"]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from") and rule.get("ports"), (
                "no rule may allow everyone or every port"
            )
    policies = _policies_for(objects, SERVING_LABELS)
    assert any(not p["spec"].get("ingress") for p in policies), "default deny missing"
    allowed = _allowed(policies)
    assert set(allowed) == {SIDECAR_PORT, TRITON_PORTS["http"], TRITON_PORTS["metrics"]}
    # only the deploy step reaches Triton's HTTP API (model control), from namespace kubeflow
    (deployer,) = allowed[TRITON_PORTS["http"]]
    assert deployer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kubeflow"
    }
    assert deployer["podSelector"]["matchLabels"] == {"qdtrack.io/deployer": "true"}
    # only Prometheus scrapes Triton's metrics
    (scraper,) = allowed[TRITON_PORTS["metrics"]]
    assert scraper["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    # the stream API: labelled clients, the Istio ingress gateway, Prometheus; never "anyone"
    for peer in allowed[SIDECAR_PORT]:
        assert peer.get("podSelector", {}).get("matchLabels"), peer
        assert peer.get("namespaceSelector", {}).get("matchLabels"), peer


def test_dev_redis_is_reachable_from_the_serving_pods_only(rendered: dict) -> None:
    objects = rendered["dev"]
    labels = one(objects, "StatefulSet", "qdtrack-redis")["spec"]["template"]["metadata"]["labels"]
    allowed = _allowed(_policies_for(objects, labels))
    assert list(allowed) == [6379]
    (peer,) = allowed[6379]
    assert peer == {"podSelector": {"matchLabels": SERVING_LABELS}}


# ----------------------------------------------------------------------------- scaling
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_and_disruption_budget(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    deployment = one(objects, target["kind"], target["name"])
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert {m["type"] for m in hpa["spec"]["metrics"]} == {"Pods"}
    assert {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]} == {
        "qdtrack_frames_in_flight", "triton_queue_time_us_per_request",
    }  # fmt: skip
    down = hpa["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300, "each scale-down moves streams"
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0
    if overlay == "gpu":
        assert hpa["spec"]["minReplicas"] >= 2, "a drain must leave a pod serving"


# --------------------------------------------------------------- affinity, RBAC, monitoring
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_stream_affinity_targets_the_sidecar_service(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    rule = one(objects, "DestinationRule")
    assert one(objects, "Service", rule["spec"]["host"])
    consistent_hash = rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]
    assert consistent_hash["httpHeaderName"] == "x-stream-id"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_step_may_list_the_triton_replicas_and_nothing_more(
    rendered: dict, overlay: str
) -> None:
    """``qdtrack deploy --triton-service NS/triton`` reads the Service's EndpointSlices
    (port ``http``) with the pipeline's account; it writes nothing in the cluster."""
    objects = rendered[overlay]
    role = one(objects, "Role", "qdtrack-deployer")
    binding = one(objects, "RoleBinding", "qdtrack-deployer")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    triton = one(objects, "Service", "triton")
    assert "http" in {p["name"] for p in triton["spec"]["ports"]}
    serving = one(objects, "Deployment", "qdtrack-serving")["spec"]["template"]["metadata"]
    assert _selects(triton["spec"]["selector"], serving["labels"])
    serving_account = one(objects, "ServiceAccount", "qdtrack-serving")
    assert serving_account["automountServiceAccountToken"] is False


def test_the_pipeline_default_triton_service_is_the_production_one(rendered: dict) -> None:
    from pipelines.qdtrack_pipeline import qdtrack_pipeline

    default = qdtrack_pipeline.component_spec.inputs["triton_service"].default
    namespace, service = default.split("/")
    triton = one(rendered["gpu"], "Service", service)
    assert triton["metadata"]["namespace"] == namespace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_objects_are_selected_by_kube_prometheus_stack(
    rendered: dict, overlay: str
) -> None:
    import json

    from k8s_helpers import K8S

    objects = rendered[overlay]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for obj in by_kind(objects, kind):
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for monitor in by_kind(objects, "ServiceMonitor"):
        services = [
            s for s in by_kind(objects, "Service")
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))
        ]  # fmt: skip
        assert len(services) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
    dashboards = [
        c for c in by_kind(objects, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert len(dashboards) == 3
    for config_map in dashboards:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((file_name, text),) = config_map["data"].items()
        assert json.loads(text) == json.loads(
            (K8S / "monitoring" / "dashboards" / file_name).read_text()
        )


def test_model_repository_claims_exist(rendered: dict) -> None:
    """dev mounts the pipeline's own claim (k8s/kubeflow); gpu brings a claim of its own."""
    import yaml
    from k8s_helpers import K8S

    def claim(objects: list[dict]) -> str:
        volumes = one(objects, "Deployment", "qdtrack-serving")["spec"]["template"]["spec"][
            "volumes"
        ]
        (volume,) = [v for v in volumes if v["name"] == "model-repository"]
        assert volume["persistentVolumeClaim"]["readOnly"] is True
        return str(volume["persistentVolumeClaim"]["claimName"])

    pipeline_volumes = list(yaml.safe_load_all((K8S / "kubeflow" / "volumes.yaml").read_text()))
    pipeline_claims = {
        (v["metadata"]["namespace"], v["metadata"]["name"])
        for v in pipeline_volumes
        if v and v["kind"] == "PersistentVolumeClaim"
    }
    assert ("kubeflow", claim(rendered["dev"])) in pipeline_claims
    gpu_claim = one(rendered["gpu"], "PersistentVolumeClaim", claim(rendered["gpu"]))
    volume = one(rendered["gpu"], "PersistentVolume", gpu_claim["spec"]["volumeName"])
    assert volume["spec"]["claimRef"] == {"namespace": "qdtrack", "name": claim(rendered["gpu"])}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_gpu_engine_cache_persists_per_node(rendered: dict) -> None:
    """ORT-TRT engines survive a pod restart: a shared claim, one folder per node (a node
    has one GPU model; engines depend on it). dev (CPU) keeps a scratch folder."""
    spec = one(rendered["gpu"], "Deployment", "qdtrack-serving")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "trt-cache"]
    claim = one(
        rendered["gpu"], "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
    )
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "emptyDir" not in volume
    triton = _container(rendered["gpu"], "triton")
    (mount,) = [m for m in triton["volumeMounts"] if m["name"] == "trt-cache"]
    assert mount["mountPath"] == "/trt-cache" and mount["subPathExpr"] == "$(NODE_NAME)"
    node = next(e for e in triton["env"] if e["name"] == "NODE_NAME")
    assert node["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    from qdtrack.export.repository import DEFAULT_TRT_CACHE_DIR

    assert mount["mountPath"] == DEFAULT_TRT_CACHE_DIR  # where exported configs point
