# govops kit: one entry point for the DevOps team, on-call staff, trainees and auditors.
# `make help` lists the targets. Run everything from the repository root.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ENV ?= lab
ENVS := $(sort $(patsubst stacks/%/hosts.yml,%,$(wildcard stacks/*/hosts.yml)))
INVENTORY := stacks/$(ENV)

VENV := .venv
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Podman settings for these machines, without touching the host's global configuration.
export CONTAINERS_CONF := $(CURDIR)/playbooks/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= $(if $(CI),0,1)
export PY_COLORS ?= $(if $(CI),0,1)
# The Pulumi engine stays offline: plugins only from .toolchain/bin, no update check.
export PATH := $(CURDIR)/.toolchain/bin:$(PATH)
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PULUMI_SKIP_UPDATE_CHECK := true
# Mitogen's strategy for every playbook run from here (and the e2e tests' runs): one Python
# process per host over the SSH connection instead of a module upload per task (1.5x on
# playbooks/common.yml measured back to back; the whole converge is mostly apt's own work on the
# hosts). kit_mitogen_linear is Mitogen's linear strategy without its CPU pinning, which put the
# controller and the whole lab on one of this machine's two CPUs (see the plugin's docstring).
# `make ... ANSIBLE_STRATEGY=linear` runs Ansible's own strategy.
export ANSIBLE_STRATEGY_PLUGINS := $(CURDIR)/playbooks/strategy_plugins
export ANSIBLE_STRATEGY ?= kit_mitogen_linear

# What the controller needs from Debian: Podman (runc, netavark + aardvark-dns for the lab
# network's DNS, iptables for its NAT), debootstrap for the lab image, promtool (prometheus);
# tzdata and systemd-analyze for the staging/prod input checks, which run on the controller;
# e2fsprogs (mkfs.ext4) for the lab hosts' small disks.
APT_PACKAGES := podman runc netavark aardvark-dns iptables debootstrap openssh-client prometheus tzdata systemd e2fsprogs
VENV_STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-lock.txt | sha256sum | cut -c1-12)
# The Ansible collections the roles, playbooks, tests and molecule use (see $(COLLECTIONS_STAMP)).
KIT_COLLECTIONS := ansible.posix ansible.utils community.crypto community.general community.postgresql containers.podman
COLLECTIONS_DIR := $(VENV)/kit-collections
COLLECTIONS_STAMP := $(COLLECTIONS_DIR)/.linked-$(shell echo $(KIT_COLLECTIONS) | sha256sum | cut -c1-12)

PLAYBOOK := ansible-playbook
TIMINGS := reports/lab-timings.txt

.PHONY: help setup apt-packages venv lock lab lab-image lab-hosts lab-down lab-status \
        lab-image-clean lab-summary deploy check tags-check health audit test lint unit molecule molecule-ci e2e e2e-tests env-check bench-sms bench-db bench-converge bench-tasks soak \
        bench-backup bench-alerts drill toolchain vault-check profile exercise grade exercise-reset

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  ENV=<env>         one of: $(ENVS) (default lab)"

env-check:
	@case " $(ENVS) " in *" $(ENV) "*) ;; \
	  *) echo "Unknown ENV '$(ENV)'. Known environments: $(ENVS) (each is a stacks/<env>/hosts.yml)" >&2; exit 2;; esac

## ---- setup -------------------------------------------------------------------------------

setup: apt-packages venv toolchain ## Install what the controller needs (idempotent)

# The Pulumi CLI, the lab's Kubernetes control plane and kwok, built from the pinned modules in
# tools/ into a cache outside the clone ($(TOOLCHAIN_CACHE)); only what is missing is built.
TOOLCHAIN_CACHE ?= $(HOME)/.cache/govops/toolchain
toolchain: venv ## Build the pinned Go tools that are missing (tools/*/go.mod) into .toolchain/bin
	python tools/toolchain.py --cache $(TOOLCHAIN_CACHE)

apt-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV_STAMP) $(COLLECTIONS_STAMP)

$(VENV_STAMP): requirements.txt requirements-lock.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -c requirements-lock.txt
	@rm -f $(VENV)/.installed-* && touch $@

# The collections the kit uses, linked from the ansible package's hundred into the one directory
# ansible.cfg searches (collections_path): a task whose module comes from a collection made every
# task worker read the metadata of all hundred, 9 CPU-seconds of a no-change converge (py-spy).
$(COLLECTIONS_STAMP): $(VENV_STAMP)
	@bundle=$$($(VENV)/bin/python -c 'import os, ansible_collections; print(os.path.realpath(list(ansible_collections.__path__)[0]))'); \
	  rm -rf $(COLLECTIONS_DIR) && for c in $(KIT_COLLECTIONS); do \
	    test -d $$bundle/$${c%.*}/$${c#*.} || { echo "collection $$c is not in the ansible package ($$bundle)" >&2; exit 1; }; \
	    mkdir -p $(COLLECTIONS_DIR)/ansible_collections/$${c%.*}; \
	    ln -s $$bundle/$${c%.*}/$${c#*.} $(COLLECTIONS_DIR)/ansible_collections/$${c%.*}/$${c#*.}; \
	  done && touch $@

lock: ## Re-freeze requirements-lock.txt from requirements.txt (needs the registry)
	rm -rf .cache/lock-venv && $(PYTHON) -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install --quiet -r requirements.txt
	{ echo "# Frozen transitive set for requirements.txt. Regenerate: make lock"; \
	  .cache/lock-venv/bin/pip freeze --all | grep -vE '^(pip|setuptools|wheel)=='; } > requirements-lock.txt

## ---- the lab -----------------------------------------------------------------------------

# Each phase is timed into $(TIMINGS) (or the file given second); `make lab` and `make test`
# print them at the end.
timed = start=$$(date +%s) && $(MAKE) --no-print-directory $(1) && \
	echo "$(1): $$(( $$(date +%s) - start )) s" >> $(or $(2),$(TIMINGS))

# Where a converge spends its time: its 25 slowest tasks, its roles and the total (ansible.posix's
# profile_tasks, profile_roles and timer callbacks). `make profile` and `make lab`'s cold converge
# (the biggest phase of `make lab` and of `make test`) print them.
PROFILE_CALLBACKS := ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks,ansible.posix.profile_roles,ansible.posix.timer \
  PROFILE_TASKS_TASK_OUTPUT_LIMIT=25
lab: ## Bring up the lab and converge it: setup, image, hosts, deploy, pulumi up, health, summary
	@mkdir -p reports && : > $(TIMINGS)
	@$(call timed,setup)
	@$(call timed,lab-image)
	@$(call timed,lab-hosts)
	@export $(PROFILE_CALLBACKS); $(call timed,deploy ENV=lab)
	@$(call timed,pulumi-up)
	@$(call timed,health ENV=lab)
	@$(MAKE) --no-print-directory lab-summary
	@echo "Timings:" && sed 's/^/  /' $(TIMINGS)

lab-image: venv ## Build the lab host image (cached by recipe hash)
	$(PLAYBOOK) -i stacks/lab playbooks/lab/image.yml

lab-hosts: venv ## Create the lab network and hosts, wait for SSH
	$(PLAYBOOK) -i stacks/lab playbooks/lab/up.yml

lab-down: venv ## Remove the lab's containers, network and state (the image stays cached)
	$(PLAYBOOK) -i stacks/lab playbooks/lab/down.yml

lab-status: ## Show the lab hosts, their state, ports and memory
	@podman ps --all --filter label=io.govops.lab=govops-lab \
	  --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
	@podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' \
	  $$(podman ps --quiet --filter label=io.govops.lab=govops-lab) 2>/dev/null \
	  | $(PYTHON) playbooks/lab/memory_total.py || true

lab-summary: venv
	@$(PYTHON) playbooks/lab/summary.py stacks/lab

lab-image-clean: ## Remove the cached lab images
	podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/govops-lab' | xargs -r podman rmi --force

## ---- any environment ---------------------------------------------------------------------

# LIMIT=<host or group> converges only those hosts (Ansible's --limit), e.g. after renewing one
# host's certificate; the plays read the other hosts' inventory variables, not their facts.
# TAGS=<role>[,<role>] applies only those roles (each play tags its roles with their names); the
# input checks run whatever the tags.
SCOPE_ARGS = $(if $(LIMIT),--limit $(LIMIT)) $(if $(TAGS),--tags $(TAGS))
comma := ,
# Ansible runs nothing for a tag it does not know, and says nothing: refuse one here instead.
tags-check:
	@for tag in $(subst $(comma), ,$(TAGS)); do test -d roles/$$tag || { \
	  echo "Unknown TAGS '$$tag': a tag is a role's name, one of: $$(ls roles | tr '\n' ' ')" >&2; exit 2; }; done
deploy: env-check tags-check venv ## Converge an environment's hosts: make deploy ENV=prod [LIMIT=<host or group>] [TAGS=<role>]
	$(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml $(SCOPE_ARGS)

# The full output goes to reports/profile-<env>.log.
profile: env-check venv ## Converge as deploy does and show where the time goes: make profile ENV=lab
	@mkdir -p reports
	@export $(PROFILE_CALLBACKS); $(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml > reports/profile-$(ENV).log; \
	  rc=$$?; sed -n '/^PLAY RECAP/,$$p' reports/profile-$(ENV).log; exit $$rc

check: env-check tags-check venv ## Dry run with diff: what deploy would change [LIMIT=<host or group>] [TAGS=<role>]
	$(PLAYBOOK) -i $(INVENTORY) playbooks/site.yml --check --diff $(SCOPE_ARGS)

# Ends with one table, every host by every component (tools/health_table.py reads the JUnit XML);
# the target's exit status stays the health run's.
# The checks wait on the hosts, not on the controller's CPU: HEALTH_JOBS pytest-xdist workers run
# them side by side, each with one shell session per host (tests/host_session.py). The lab's
# whole run took 26 s with 2, 3 or 4 workers on 2 cores; more only start more Pythons.
HEALTH_JOBS ?= 2
HEALTH_HOSTS = $(or $(LIMIT),all)
# Testinfra splits --hosts at commas: each host or group of LIMIT=a,b gets its own ansible://.
HEALTH_TARGETS = $(subst $(comma),$(comma)ansible://,ansible://$(HEALTH_HOSTS))
health: env-check venv ## Testinfra health checks, then a host x component table: LIMIT=<host or group> for some hosts
	@mkdir -p reports && rm -f reports/health-$(ENV).xml
	@rc=0; echo "pytest tests/health --ansible-inventory=$(INVENTORY) --junitxml=reports/health-$(ENV).xml"; \
	pytest tests/health -p no:cacheprovider --hosts='$(HEALTH_TARGETS)' -n $(HEALTH_JOBS) \
	  --ansible-inventory=$(INVENTORY) --junitxml=reports/health-$(ENV).xml || rc=$$?; \
	python tools/health_table.py reports/health-$(ENV).xml --env $(ENV) --inventory $(INVENTORY) --hosts '$(HEALTH_HOSTS)' || true; \
	exit $$rc

# Every compliance control on every host (tests/compliance), the drift from a check-mode run, and
# the auditors' report (HTML, JSON, JUnit) under reports/audit-<env>-<time>/, with the waivers of
# stacks/waivers.<env>.yml applied. See tools/audit.py and docs/audit.md.
CERT_MIN_DAYS ?= 30
audit: env-check venv ## Compliance audit with evidence for auditors: make audit ENV=prod [LIMIT=<host or group>] [CERT_MIN_DAYS=30] [WAIVERS=<file>]
	@python tools/audit.py --env $(ENV) $(if $(LIMIT),--limit $(LIMIT)) --certificate-min-days $(CERT_MIN_DAYS) \
	  $(if $(WAIVERS),--waivers $(WAIVERS))

# The vault is opened as ansible-playbook opens it: ANSIBLE_VAULT_PASSWORD_FILE, or
# VAULT_ARGS=--ask-vault-pass; VAULT=<file> checks another file than group_vars/all/vault.yml.
vault-check: env-check venv ## Keys the environment's vault lacks vs its vault.example.yml (names only)
	@python playbooks/vault_check.py $(ENV) $(if $(VAULT),--vault $(VAULT)) $(VAULT_ARGS)

## ---- Kubernetes objects (Pulumi) ----------------------------------------------------------

# The program in infra/ on an environment's stack (stacks/Pulumi.<env>.yaml names its state backend
# and secrets provider); tools/pulumi_stack.py picks the Kubernetes provider: upstream wherever it
# is installed, else, for the lab and render only, the lab's stand-in. PULUMI_ARGS go to the engine.
# Each runs the policy pack infra/policy; render then checks the manifests against the Kubernetes schema.
.PHONY: preview up render pulumi-up
PULUMI_STACK = $(VENV)/bin/python tools/pulumi_stack.py

preview: env-check venv ## What `up` would change in an environment's Kubernetes objects
	@$(PULUMI_STACK) preview --env $(ENV) -- $(PULUMI_ARGS)

up: env-check venv ## Create or update an environment's Kubernetes objects (previews first)
	@$(PULUMI_STACK) up --env $(ENV) -- $(PULUMI_ARGS)

render: env-check venv ## An environment's manifests to reports/render/<env>/, schema-checked (no cluster, no state)
	@$(PULUMI_STACK) render --env $(ENV) -- $(PULUMI_ARGS)

# --refresh: lab hosts made again while .lab/pulumi stayed (a reboot) leave state for objects that are gone.
pulumi-up: venv
	@$(MAKE) --no-print-directory up ENV=lab PULUMI_ARGS=--refresh

## ---- tests -------------------------------------------------------------------------------

# make test runs two molecule scenarios, side by side: `common` and `baseline`, every host's base
# and its security baseline. The lab's end-to-end run converges every role cold, re-runs it for
# zero changes and in check mode, and runs every health check; what a scenario adds is its role
# in a container of its own under a second set of variables (common: a second admin, a removed
# one, extra packages and hosts entries; baseline: a host that drifted, with root and passwords
# let in by a drop-in, telnet installed and a world-readable shadow file). The other roles'
# scenarios take about 30 minutes of CI's 90 (prometheus alone 9), so run them with
# `make molecule` (or MOLECULE_ROLES=<role>) when their role changes.
MOLECULE_CI := common baseline
TEST_TIMINGS := reports/test-timings.txt
# The checks that need no lab (molecule-ci, lint, the unit tests) run beside the e2e tests, at a
# lower CPU priority (nice CHECKS_NICE), in the CPU those tests leave idle while they wait on
# alerts, timers and failovers (61 % busy on 2 cores). Not beside the lab's cold converge: it took
# 562 s beside them instead of 376 s alone (601 s at the same priority: nice does not order the
# disk writes of their package installs). Measured beside the e2e tests: the checks were done
# 546 s into them, the audit tests took 302 s instead of 210 and the e2e tests 1926 s in all
# (1974 s before, with the checks beside the lab). Their output is shown at the end
# (reports/checks.log); any failure fails `make test`, and they run also when the lab's bring-up
# failed.
CHECKS_NICE ?= 10
test: ## Everything CI runs: the lab's bring-up and e2e tests, with molecule (common, baseline), lint and unit beside the e2e tests at a lower priority; the time of each phase
	@mkdir -p reports && : > $(TEST_TIMINGS)
	@$(call timed,setup,$(TEST_TIMINGS))
	@$(call timed,lab-image,$(TEST_TIMINGS))
	@$(MAKE) --no-print-directory lab-down >/dev/null
	@rc=0; lab_up=yes; if ! { $(call timed,lab,$(TEST_TIMINGS)); }; then lab_up=no; rc=1; \
	    $(MAKE) --no-print-directory lab-down > reports/lab-down.log 2>&1 || true; fi; \
	  { nice -n $(CHECKS_NICE) sh -c '$(call timed,molecule-ci,$(TEST_TIMINGS)) && $(call timed,lint,$(TEST_TIMINGS)) \
	    && $(call timed,unit,$(TEST_TIMINGS))'; } > reports/checks.log 2>&1 & checks=$$!; \
	  if [ $$lab_up = yes ]; then $(call timed,e2e-tests,$(TEST_TIMINGS)) || rc=$$?; fi; \
	  checks_rc=0; wait $$checks || checks_rc=$$?; \
	  echo "== molecule-ci, lint and unit (beside the e2e tests, nice $(CHECKS_NICE)), reports/checks.log:"; cat reports/checks.log; \
	  echo "make test phases (molecule-ci, lint and unit ran beside e2e-tests):" && sed 's/^/  /' $(TEST_TIMINGS) \
	    && echo "of which the lab:" && sed 's/^/  /' $(TIMINGS); \
	  [ $$rc -eq 0 ] && [ $$checks_rc -eq 0 ]
molecule-ci:
	@$(MAKE) --no-print-directory molecule MOLECULE_ROLES="$(MOLECULE_CI)"


lint: venv ## ansible-lint (production profile), yamllint, ruff
	yamllint --strict .
	ansible-lint --offline
	ruff check .
	ruff format --check .

unit: venv ## Unit tests (no lab needed)
	pytest tests/unit -p no:cacheprovider

# Scenarios run MOLECULE_JOBS at a time (each in its own containers and network); each one's
# output goes to reports/molecule/<role>.log and is shown when it fails. MOLECULE_ROLES picks
# scenarios (default: every role that has one). Molecule's runs keep Ansible's own strategy:
# its podman-connection hosts are not what Mitogen was measured on.
MOLECULE_JOBS ?= 2
MOLECULE_ROLES ?= $(patsubst roles/%/molecule/default,%,$(wildcard roles/*/molecule/default))
molecule: venv lab-image toolchain ## Molecule (check, idempotence, verify) for every role: MOLECULE_ROLES="kannel ..." for some
	@mkdir -p reports/molecule
	@printf 'roles/%s/molecule/default\n' $(MOLECULE_ROLES) | xargs -P $(MOLECULE_JOBS) -I{} bash -c ' \
	  scenario={}; role=$${scenario%/molecule/default}; name=$${role#roles/}; start=$$(date +%s); \
	  if (cd $$role && ANSIBLE_STRATEGY=linear molecule test) > reports/molecule/$$name.log 2>&1; then \
	    echo "== molecule: $$name passed in $$(( $$(date +%s) - start )) s"; \
	  else echo "== molecule: $$name FAILED, the end of reports/molecule/$$name.log:"; \
	    tail -n 120 reports/molecule/$$name.log; exit 255; fi'

e2e: venv ## The lab end to end: up, converge, health, zero-change re-run, bad input, down
	@$(MAKE) --no-print-directory lab-down >/dev/null
	@$(MAKE) --no-print-directory lab || { $(MAKE) --no-print-directory lab-status || true; \
	  $(MAKE) --no-print-directory lab-down > reports/lab-down.log 2>&1 || true; exit 1; }
	@$(MAKE) --no-print-directory e2e-tests

# The end-to-end tests on the lab `make lab` brought up; the lab goes down after, whatever happened.
# Most run one at a time: they break and check hosts across the tiers. Two groups spend most of
# their time waiting for alerts, the lab's CPUs half idle, and other tests run beside them, each
# pair on hosts the other neither breaks nor checks:
# - the monitoring faults (sms2's node exporter, a database replica: 2 minutes) beside the SMS
#   tier's kill, link-down and text tests (sms1, sms2's gateway and the SMSC simulator);
# - the incident drills (a `for:` of 5 minutes: 7 minutes) beside the Kubernetes and Pulumi tests
#   (k8s1's API server, scratch namespaces, local Pulumi state).
# Each pair runs after the others; the output of the tests beside is shown after the pair's.
E2E_ALERTS := tests/e2e/test_monitoring.py
E2E_BESIDE_ALERTS := tests/e2e/test_sms_reliability.py tests/e2e/test_sms_text_integrity.py
E2E_DRILLS := tests/e2e/test_incidents.py
E2E_BESIDE_DRILLS := $(addprefix tests/e2e/,test_kubernetes.py test_lab_kubernetes_provider.py test_pulumi_cli.py \
  test_pulumi_services.py test_pulumi_stacks.py)
E2E_PYTEST := pytest -p no:cacheprovider --durations=15
# $(call e2e_side_by_side,<name>,<tests>,<tests beside them>); sets rc when either fails
e2e_side_by_side = $(E2E_PYTEST) $(3) --junitxml=reports/e2e-$(1)-beside.xml > reports/e2e-$(1)-beside.log 2>&1 & \
  beside=$$!; $(E2E_PYTEST) $(2) --junitxml=reports/e2e-$(1).xml || rc=$$?; wait $$beside || rc=$$?; \
  echo "== the tests beside them, reports/e2e-$(1)-beside.log:"; cat reports/e2e-$(1)-beside.log
e2e-tests: venv
	@rc=0; $(E2E_PYTEST) tests/e2e --junitxml=reports/e2e.xml \
	    $(addprefix --ignore=,$(E2E_ALERTS) $(E2E_BESIDE_ALERTS) $(E2E_DRILLS) $(E2E_BESIDE_DRILLS)) || rc=$$?; \
	  $(call e2e_side_by_side,alerts,$(E2E_ALERTS),$(E2E_BESIDE_ALERTS)); \
	  $(call e2e_side_by_side,drills,$(E2E_DRILLS),$(E2E_BESIDE_DRILLS)); \
	  $(MAKE) --no-print-directory lab-status || true; \
	  $(MAKE) --no-print-directory lab-down > reports/lab-down.log 2>&1 || { rc=$$?; \
	    echo "== make lab-down FAILED, the end of reports/lab-down.log:"; tail -n 40 reports/lab-down.log; }; \
	  exit $$rc

## ---- exercises for trainees (the lab must be up: make lab) ---------------------------------

# The catalogue is exercises/catalogue.yml; docs/trainees.md is the guide.
EXERCISE = $(VENV)/bin/python tools/exercise.py --env $(ENV)
exercise: venv ## Trainees: list the break-and-fix exercises, or break the lab with one: make exercise NAME=<name>
	@$(EXERCISE) $(if $(NAME),start $(NAME),list)

grade: venv ## Trainees: is the running exercise fixed? HINT=1, HINT=2 adds a hint; recorded in reports/exercises.json
	@$(EXERCISE) grade $(if $(HINT),--hint $(HINT))

exercise-reset: venv ## Trainees: end the exercise and restore what it broke (make deploy on its hosts)
	@$(EXERCISE) reset

## ---- benchmarks (the lab must be up: make lab) ------------------------------------------

bench-sms: venv ## SMS tier: throughput (one and both nodes), sendsms->DLR latency, kill-test loss
	cd tests/e2e && python bench_sms_gateway.py --messages $(or $(MESSAGES),1000) --runs $(or $(RUNS),3)

drill: venv ## Rehearse an incident in the lab: make drill SCENARIO=failover
	@test -f playbooks/drills/$(SCENARIO).yml || { echo "Unknown SCENARIO '$(SCENARIO)'. Known: $$(ls playbooks/drills/*.yml | xargs -n1 basename | sed 's/.yml$$//' | tr '\n' ' ')" >&2; exit 2; }
	$(PLAYBOOK) -i stacks/lab playbooks/drills/$(SCENARIO).yml

bench-db: venv ## Database tier: failover drill RUNS times; time until writes succeed again, transactions lost
	python tests/e2e/bench_db_failover.py --runs $(or $(RUNS),3)

soak: venv ## Database and SMS load together for SOAK_SECONDS (300): same leader and timeline after, no write lost
	$(PLAYBOOK) -i stacks/lab playbooks/drills/soak.yml -e soak_seconds=$(or $(SOAK_SECONDS),300)

bench-alerts: venv ## Monitoring: fault -> alert and fault -> SMS page times (RUNS faults each), targets, memory
	cd tests/e2e && python bench_alerting.py --runs $(or $(RUNS),3)

bench-converge: venv ## A no-change converge of the lab RUNS times (5): wall and controller CPU, medians; 0 changed each [CHECK=1]
	python tests/e2e/bench_converge.py --runs $(or $(RUNS),5) $(if $(CHECK),--check)

bench-tasks: venv ## Ansible's own cost per task and host on the lab (debug, stat; 1..all hosts, fewer forks) [TASKS=40]
	python tests/e2e/bench_task_overhead.py --tasks $(or $(TASKS),40)

bench-backup: venv ## Backups tier: full/diff backup time and size of a 1 GB seed, restore time (RTO), archive lag (RPO)
	python tests/e2e/bench_db_backup.py --mb $(or $(MB),1024) --runs $(or $(RUNS),3)
