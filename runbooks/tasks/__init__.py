"""The runbooks' Fabric tasks, one module per tier; runbooks/fabfile.py collects them."""
