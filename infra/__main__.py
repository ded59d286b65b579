"""The Kubernetes objects of one environment: `pulumi up --stack <env>` (see stacks/Pulumi.<env>.yaml).

Each service of the stack file gets its namespace baseline, and, as its settings ask, database
access, SMS access, monitoring hooks and a web tier. Each component is a top-level resource (its
URN does not depend on the others), so adding one never moves another.
"""

import signal

import config
import pulumi
import pulumi_kubernetes as k8s
from components.database_access import DatabaseAccess
from components.monitoring_hooks import MonitoringHooks
from components.service_namespace import ServiceNamespace
from components.sms_access import SmsAccess
from components.web_service import WebService

# When a step fails the engine interrupts the program: end without a KeyboardInterrupt
# traceback, so the engine's own message is the one the operator reads.
signal.signal(signal.SIGINT, signal.SIG_DFL)


def deploy(service: config.Service, stack: config.StackConfig, secrets: dict) -> dict:
    """One service's components; what the stack exports about it."""
    env, platform = stack.environment, stack.platform
    namespace = ServiceNamespace(service, env, platform)
    exported = {"namespace": namespace.namespace}
    env_from, after = [], [namespace]
    if service.database and platform:
        database = DatabaseAccess(service, env, platform, namespace.namespace, secrets[service.database.password_key])
        env_from.append(k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name="db")))
        after.append(database)
    if service.sms and platform:
        sms = SmsAccess(service, env, platform, namespace.namespace, secrets[service.sms.password_key])
        env_from.append(k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name="sms")))
        env_from.append(
            k8s.core.v1.EnvFromSourceArgs(config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name="sms-callbacks"))
        )
        after.append(sms)
    if service.web and platform:
        hooks = MonitoringHooks(service, env, namespace.namespace)
        web = WebService(
            service,
            env,
            platform,
            namespace.namespace,
            env_from,
            hooks.annotations,
            pulumi.ResourceOptions(depends_on=[*after, hooks]),
        )
        exported.update(deployment=web.deployment, hostname=web.hostname)
    return exported


try:
    stack, secrets = config.load()
except config.ConfigError as error:
    raise pulumi.RunError(str(error)) from None  # one line naming the stack file and the key
deployed = {service.name: deploy(service, stack, secrets) for service in stack.services}
pulumi.export("namespaces", [exported["namespace"] for exported in deployed.values()])
pulumi.export("services", deployed)
