"""The Kubernetes objects of one environment: `pulumi up --stack <env>` (see stacks/Pulumi.<env>.yaml)."""

import signal

import config
import pulumi
from components.service_namespace import ServiceNamespace

# When a step fails the engine interrupts the program: end without a KeyboardInterrupt
# traceback, so the engine's own message is the one the operator reads.
signal.signal(signal.SIGINT, signal.SIG_DFL)

stack = config.load()
namespaces = [ServiceNamespace(service, stack.environment) for service in stack.services]
pulumi.export("namespaces", [ns.namespace for ns in namespaces])
