"""The Kubernetes objects of one environment: `pulumi up --stack <env>` (see stacks/Pulumi.<env>.yaml)."""

import config
import pulumi
from components.service_namespace import ServiceNamespace

stack = config.load()
namespaces = [ServiceNamespace(service, stack.environment) for service in stack.services]
pulumi.export("namespaces", [ns.namespace for ns in namespaces])
