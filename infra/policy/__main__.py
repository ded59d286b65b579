"""The govops policy pack (PulumiPolicy.yaml): the engine starts it for every preview and update."""

import pack
import secret_marks
from pulumi_policy import EnforcementLevel, PolicyPack

secret_marks.install()  # before the first analysis, so the Secret rule can tell secrets apart
PolicyPack("govops-workloads", pack.policies(), EnforcementLevel.MANDATORY)
