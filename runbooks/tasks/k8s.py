"""The Kubernetes objects of the CFM and scorecard services, read with kubectl from the controller,
with the cluster the environment's Pulumi stack names (kubernetes:kubeconfig / kubernetes:context)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from invoke import task

from .core import REPO, Environment, Problem, Refused, no_fabric_hosts, verdict

KINDS = (
    "deployments,replicasets,pods,services,endpointslices,poddisruptionbudgets,horizontalpodautoscalers,"
    "ingresses,networkpolicies,resourcequotas,configmaps,secrets"
)


def kubectl_command(environment: Environment) -> list[str]:
    """kubectl (the pinned one of make toolchain first) pointed at the environment's cluster."""
    pinned = REPO / ".toolchain/bin/kubectl"
    binary = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if not binary:
        raise Problem("no kubectl: make toolchain builds the pinned one into .toolchain/bin")
    config = environment.pulumi_stack().get("config", {})
    command = [binary, "--request-timeout=15s"]
    kubeconfig = config.get("kubernetes:kubeconfig")
    if isinstance(kubeconfig, str) and "\n" not in kubeconfig:
        path = kubeconfig if os.path.isabs(kubeconfig) else str(REPO / kubeconfig)
        command.append(f"--kubeconfig={path}")
    if config.get("kubernetes:context"):
        command.append(f"--context={config['kubernetes:context']}")
    return command


def services_of(environment: Environment) -> list[str]:
    return [service["name"] for service in environment.pulumi_stack().get("config", {}).get("govops:services", [])]


def deployment_problems(namespace: str, deployment: dict) -> list[str]:
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    wanted, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    problems = []
    if ready < wanted:
        problems.append(f"{namespace}/{deployment['metadata']['name']}: {ready} of {wanted} replicas ready")
    for condition in status.get("conditions", []):
        if condition.get("type") == "Available" and condition.get("status") != "True":
            problems.append(f"{namespace}/{deployment['metadata']['name']} not available: {condition.get('message')}")
    return problems


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>, its Pulumi stack names the cluster)",
        "service": "cfm or scorecard (default: every service of the stack)",
    },
)
def status(c, env="lab", service=None):
    """Read-only: a service's Kubernetes objects (namespace = the service) and whether its Deployments are ready."""
    no_fabric_hosts(c)
    environment = Environment(env)
    known = services_of(environment)
    if service and service not in known:
        raise Refused(f"Unknown service '{service}' in {env}. Known services: {' '.join(known)}")
    kubectl = kubectl_command(environment)
    problems = []
    nodes = subprocess.run([*kubectl, "get", "nodes"], capture_output=True, text=True, check=False, timeout=60)
    if nodes.returncode != 0:
        raise Problem(
            f"the Kubernetes API does not answer: {nodes.stderr.strip()[-300:]} (runbooks/KubernetesApiDown.md)"
        )
    print(nodes.stdout.rstrip())
    problems += [
        f"node {line.split()[0]} is {line.split()[1]}"
        for line in nodes.stdout.splitlines()[1:]
        if line.split()[1:2] != ["Ready"]
    ]
    for namespace in [service] if service else known:
        listed = subprocess.run(
            [*kubectl, "-n", namespace, "get", KINDS, "-o", "wide"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        print(f"== namespace {namespace}")
        print((listed.stdout or listed.stderr).rstrip())
        if listed.returncode != 0:
            problems.append(f"{namespace}: kubectl get failed: {listed.stderr.strip()[-200:]}")
            continue
        deployments = subprocess.run(
            [*kubectl, "-n", namespace, "get", "deployments", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        items = json.loads(deployments.stdout).get("items", []) if deployments.returncode == 0 else []
        if not items:
            problems.append(f"{namespace}: no Deployment (make up ENV={env} creates them)")
        for deployment in items:
            problems += deployment_problems(namespace, deployment)
    verdict(problems, "every node is Ready and every Deployment has its replicas ready")
