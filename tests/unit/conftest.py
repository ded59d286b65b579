"""Unit tests import the lab's Kubernetes provider as the engine runs it (from its own directory)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools/lab-kubernetes-provider"))
