"""How a service sends SMS and hears back: the Secret `sms` with the sendsms URL of every gateway
node (send to the first, on a connection error or a 5xx to the next) and the account's
credentials; the ConfigMap `sms-callbacks` with where the gateways deliver delivery reports and
citizens' replies.

The one setting shared with the Kannel role is the callback base URL (govops:services[].sms.
callbackBaseUrl): the role's kannel_dlr_url must start with <base>/dlr? and kannel_mo_url with
<base>/mo? (tests/unit/test_infra_stacks.py checks every environment)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Platform, Service

from components.labels import service_labels
from components.secret_data import secret_data

DLR_PATH = "/dlr"
MO_PATH = "/mo"


def sendsms_settings(service: Service, platform: Platform, password: str) -> dict[str, str]:
    assert service.sms
    urls = [f"http://{host}:{platform.sendsms_port}/cgi-bin/sendsms" for host in platform.sms_gateways]
    return {"SENDSMS_URLS": ",".join(urls), "SENDSMS_USERNAME": service.sms.username, "SENDSMS_PASSWORD": password}


def callback_settings(service: Service) -> dict[str, str]:
    assert service.sms
    base = service.sms.callback_base_url
    return {"SMS_CALLBACK_BASE_URL": base, "SMS_DLR_URL": base + DLR_PATH, "SMS_MO_URL": base + MO_PATH}


class SmsAccess(pulumi.ComponentResource):
    secret_name: pulumi.Output[str]
    callbacks_config_map: pulumi.Output[str]

    def __init__(
        self,
        service: Service,
        environment: str,
        platform: Platform,
        namespace: pulumi.Input[str],
        password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:SmsAccess", f"{service.name}-sms", None, opts)
        assert service.sms, "SmsAccess needs the service's sms settings"
        child = pulumi.ResourceOptions(parent=self)
        labels = service_labels(service, environment)
        settings = pulumi.Output.from_input(password).apply(
            lambda p: secret_data(sendsms_settings(service, platform, p))
        )
        secret = k8s.core.v1.Secret(
            f"{service.name}-sms",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="sms", namespace=namespace, labels=labels),
            type="Opaque",
            data=pulumi.Output.secret(settings),
            opts=child,
        )
        callbacks = k8s.core.v1.ConfigMap(
            f"{service.name}-sms-callbacks",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="sms-callbacks", namespace=namespace, labels=labels),
            data=callback_settings(service),
            opts=child,
        )
        self.secret_name = secret.metadata.name
        self.callbacks_config_map = callbacks.metadata.name
        self.register_outputs({"secret_name": self.secret_name, "callbacks_config_map": self.callbacks_config_map})
