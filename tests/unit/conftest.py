"""Unit tests import the lab's Kubernetes provider as the engine runs it (from its own directory),
and the Pulumi program's modules as its language host does (from infra/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools/lab-kubernetes-provider"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
