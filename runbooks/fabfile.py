"""The runbooks' tasks: the steps of runbooks/*.md that can be run.

    fab -r runbooks --list                                  # every task
    fab -r runbooks db.status --env prod                    # read-only
    fab -r runbooks db.switchover --env prod --candidate db2 --dry-run
    fab -r runbooks --help db.switchover                    # a task's options

Run from the repository root with the kit's virtualenv (.venv/bin/fab, or after
`. .venv/bin/activate`). Every task takes --env (lab, staging, prod: stacks/<env>) and reaches the
hosts as `make deploy ENV=<env>` does; tasks that change something ask for confirmation, need
--yes in a non-interactive shell, take --dry-run, and log each attempt to
reports/runbook-actions.log. See runbooks/README.md.
"""

from invoke import Collection
from tasks import alerts, backup, db, host, k8s, sms

namespace = Collection()
for module in (alerts, backup, db, host, k8s, sms):
    namespace.add_collection(Collection.from_module(module))
