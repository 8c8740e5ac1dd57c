"""A small evaluator of Kubernetes NetworkPolicy semantics (``networking.k8s.io/v1``).

Given the policies of a cluster and two pods, :func:`connection_allowed` says whether a TCP
connection from one pod to a port of the other is admitted, as a conforming network plugin
decides it:

* a pod is isolated for ingress (egress) when a policy of its namespace selects it and
  lists ``Ingress`` (``Egress``) in ``policyTypes``; ``policyTypes`` defaults to
  ``Ingress``, plus ``Egress`` when the policy has egress rules;
* a non-isolated direction admits everything; an isolated one admits what at least one
  rule of a selecting policy admits (policies add up, no rule denies);
* a rule's peers: ``podSelector`` alone means pods of the policy's namespace,
  ``namespaceSelector`` alone every pod of the matching namespaces, both together the
  matching pods of the matching namespaces; no ``from``/``to`` means every peer;
  ``ipBlock`` peers never match a pod here (pod IPs are not modelled);
* a rule's ports: none means every port; a port matches by number, or by name resolved
  against the destination pod's container ports, with ``endPort`` ranges; protocol TCP by
  default;
* selectors: ``matchLabels`` and ``matchExpressions`` (``In``, ``NotIn``, ``Exists``,
  ``DoesNotExist``); an empty selector selects everything;
* traffic inside one pod (loopback) is not subject to policies.

A connection needs both the source's egress and the destination's ingress to admit it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: namespace, labels and named container ports."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector matches ``labels`` (``None`` selects nothing)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _peer_matches(
    peer: Mapping[str, Any],
    policy_namespace: str,
    pod: Pod,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    if "ipBlock" in peer:
        return False
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = pod.namespace == policy_namespace
    else:
        in_namespace = selects(namespaces, namespace_labels.get(pod.namespace, {}))
    return in_namespace and (pods is None or selects(pods, pod.labels))


def _port_matches(rule_port: Mapping[str, Any], port: int, protocol: str, target: Pod) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        return target.ports.get(wanted) == port
    low = int(wanted)
    return low <= port <= int(rule_port.get("endPort", low))


def _direction_admits(
    policies: Iterable[Mapping[str, Any]],
    direction: str,
    subject: Pod,
    peer: Pod,
    target: Pod,
    port: int,
    protocol: str,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    """Ingress: subject = destination, peer = source; egress: the other way round."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolated = False
    for policy in policies:
        namespace = policy["metadata"].get("namespace", "default")
        if namespace != subject.namespace or direction not in policy_types(policy):
            continue
        if not selects(policy["spec"].get("podSelector", {}), subject.labels):
            continue
        isolated = True
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(p, namespace, peer, namespace_labels) for p in peers
            )
            ports = rule.get("ports")
            port_ok = not ports or any(_port_matches(p, port, protocol, target) for p in ports)
            if peer_ok and port_ok:
                return True
    return not isolated


def connection_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Pod,
    destination: Pod,
    port: int,
    *,
    namespace_labels: Mapping[str, Mapping[str, str]],
    protocol: str = "TCP",
) -> bool:
    """Whether ``source`` may open a connection to ``destination:port``."""
    if source == destination:
        return True  # loopback inside the pod
    policies = list(policies)
    egress = _direction_admits(
        policies, "Egress", source, destination, destination, port, protocol, namespace_labels
    )
    ingress = _direction_admits(
        policies, "Ingress", destination, source, destination, port, protocol, namespace_labels
    )
    return egress and ingress
