# Two commands for a newcomer: `make demo` and `make test`. Both install what is missing.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SITE ?= hil/sites/house-10kwp.toml
DEMO_TRACE ?= hil/traces/house-spring-day.csv

.PHONY: demo test check lint typecheck unit bench install native system-deps clean firmware-deploy hil

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# MicroPython in Node (the firmware's tests) and the MicroPython stubs (its type check).
# The stubs go into folders of their own: they shadow the standard library.
FIRMWARE_NPM := firmware/node_modules/.package-lock.json
FIRMWARE_STUBS := firmware/.typings/.installed firmware/.typings-rp2/.installed
$(FIRMWARE_NPM): firmware/package-lock.json | system-deps
	npm ci --prefix firmware --no-audit --no-fund --loglevel=error
firmware/.typings/.installed: | $(STAMP)
	$(BIN)/python -m pip install --quiet --target firmware/.typings micropython-esp32-stubs==1.29.0.post1
	@touch $@
firmware/.typings-rp2/.installed: | $(STAMP)
	$(BIN)/python -m pip install --quiet --target firmware/.typings-rp2 micropython-rp2-rpi-pico-w-stubs==1.29.0.post1
	@touch $@

# axe-core for the HMI's accessibility tests (injected into the pages by the browser tests,
# never served by the Pi).
A11Y_NPM := tests/hmi/a11y/node_modules/.package-lock.json
$(A11Y_NPM): tests/hmi/a11y/package-lock.json | system-deps
	npm ci --prefix tests/hmi/a11y --no-audit --no-fund --loglevel=error

install: $(STAMP) system-deps $(FIRMWARE_NPM) $(A11Y_NPM)

# Debian packages the test suite needs: Mosquitto (MQTT tests start their own broker),
# socat (Modbus RTU over a pty pair), faketime (libfaketime: the HIL wall-clock step),
# openssl (TLS test certificates), node + npm (MicroPython in WebAssembly for the firmware
# tests), chromium + chromedriver (HMI tests), nats-server (the fleet tests start their own
# 3-node MQTT cluster), postgresql (the fleet tests start their own server with initdb),
# systemd (systemd-analyze verifies the unit), rsync (the install test runs
# deploy/install.sh into a throw-away root) and gcc (tests/unit/test_native.py compiles the
# control core with mypyc).
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$$missing nats-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v rsync >/dev/null 2>&1 || missing="$$missing rsync"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The live demo: an emulated site (Modbus + miner APIs over real sockets, the tank satellite
# over Mosquitto) and `hearth run` against it, the day before already lived through the
# simulator; Ctrl-C stops both. DEMO_SPEED > 1 makes the plant's day go faster than the
# controller's clock (at 1, hearth run's wall clock is the replayed time: libfaketime).
DEMO_SPEED ?= 1
demo: $(STAMP) system-deps
	@$(BIN)/hearth compare --config $(DEMO_SITE) --trace $(DEMO_TRACE)
	@echo
	@$(BIN)/hearth demo --site $(DEMO_SITE) --trace $(DEMO_TRACE) --speed $(DEMO_SPEED) $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP) $(FIRMWARE_STUBS)
	$(BIN)/mypy
	$(BIN)/mypy --config-file firmware/mypy.ini
	$(BIN)/mypy --config-file firmware/mypy-rp2.ini

# The ledger suite also runs against PostgreSQL when a server answers here (each test in
# a schema of its own, so parallel workers never share tables).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The suite mostly waits (real-time rigs, brokers, browsers): more workers than cores.
# `slow` tests start first; real-time HIL rigs run in at most HEARTH_RIG_LANES lanes
# (tests/conftest.py). Each run gets its own temporary root: pytest's shared
# /tmp/pytest-of-USER keeps only the last three runs, and a concurrent run elsewhere on the
# machine would delete a running test's directory.
# Four workers and three rig lanes by default (measured on a 2-core machine, docs/testing.md):
# CPU is ~20 % of the suite's test time, so four workers keep both cores busy; the
# real-time rigs (2-3 scenarios of a hearth run, emulators and a broker each) run in three
# lanes of ~4 min (one lane alone would hold ~10 min, longer than the suite's target), and
# the fourth worker starts the other long waits (OpenADR, deploy, fleet scale). Five
# workers on a machine loaded by other work made real-time tests fail (rigs, satellite
# timing). More cores: TEST_WORKERS=6 HEARTH_RIG_LANES=4 make test; a busy machine:
# TEST_WORKERS=2 HEARTH_RIG_LANES=2.
# Every test's wall and CPU time goes to out/test-times/ (tests/suite_timing.py):
# `python bench/suite_time.py out/test-times/run` prints where the time went.
TEST_WORKERS ?= 4
HEARTH_RIG_LANES ?= 3
export HEARTH_RIG_LANES
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
define run_pytest
	@tmp=$$(mktemp -d /tmp/hearth-test.XXXXXX); \
	if $(BIN)/python -c "import sqlalchemy as s; s.create_engine('$(PG_TEST_URL)').connect().close()" 2>/dev/null; \
	then echo "PostgreSQL reachable: ledger tests run on it too"; export HEARTH_TEST_PG_URL=$(PG_TEST_URL); \
	else echo "no PostgreSQL reachable: ledger tests on SQLite only"; fi; \
	mkdir -p out/test-times && rm -f out/test-times/run.*.jsonl; \
	HEARTH_TEST_TIMES=out/test-times/run $(BIN)/pytest --basetemp=$$tmp/t -p suite_timing $(1); \
	rc=$$?; \
	if [ $$rc = 0 ]; then rm -rf $$tmp; else echo "test files kept in $$tmp"; fi; exit $$rc
endef

unit: $(STAMP)
	$(call run_pytest,$(PYTEST_PARALLEL))

# After the install, ruff and mypy (~35 s cold, one core) run beside pytest, whose workers
# mostly wait; their few lines land among pytest's (no -O: it would hold pytest's output
# until the end). Any of the three failing fails `make test`.
test: install
	@$(MAKE) --no-print-directory -j3 lint typecheck unit

# The inner loop (< 1 min): lint, types and the fast unit and property tests; no servers,
# no browsers, no rigs.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 -m "not slow" tests/unit tests/property

# The control core compiled with mypyc (controller/native.py): used only while it matches
# the sources, several times fewer instructions per step for long simulations. Optional:
# everything runs without it (make test does not need it; its own test builds one).
native: $(STAMP)
	$(BIN)/python -m controller.native build

bench: $(STAMP) native
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sim_speed.py
	$(BIN)/python bench/control_quality.py
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/python bench/modbus_bench.py
	$(BIN)/python bench/service_bench.py
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/fleet_bench.py

# Every HIL scenario in hil/scenarios/ against the unmodified hearth run (reports in out/hil).
hil: $(STAMP)
	$(BIN)/python -m hil.rig run --out out/hil

# Flash the satellite firmware: make firmware-deploy PORT=/dev/ttyUSB0 [CONFIG=..] [BOARD=..]
firmware-deploy: $(STAMP)
	@test -n "$(PORT)" || { echo "usage: make firmware-deploy PORT=/dev/ttyUSB0 [CONFIG=config.json] [BOARD=esp32|rp2]" >&2; exit 2; }
	MPREMOTE=$(BIN)/mpremote PYTHON=$(BIN)/python firmware/tools/deploy.sh "$(PORT)" "$(CONFIG)" "$(BOARD)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis firmware/node_modules \
	  controller/control/_native controller/control/_native.new \
	  tests/hmi/a11y/node_modules \
	  firmware/.typings firmware/.typings-rp2
