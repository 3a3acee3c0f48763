# `make demo` runs the main job, `make test` the tests; each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test bench reproduce lint data sysdeps armdeps _apt clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and pinned: this CPU build lies on the machine's disk
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Debian packages, installed when missing and we are root: the dataset for both targets,
# PostgreSQL and Chromium for the tests that start a server or render the report.
define apt_install
	@if [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq $(1) >/dev/null || \
		 (apt-get update -qq && apt-get install -y -qq $(1) >/dev/null)); \
	fi
endef

data:
	@if [ ! -f $(FMNIST) ]; then $(MAKE) --no-print-directory _apt PKGS=dataset-fashion-mnist; fi

sysdeps: data
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory _apt PKGS=postgresql; fi
	@if [ ! -x /usr/bin/chromium ]; then $(MAKE) --no-print-directory _apt PKGS=chromium; fi
	@$(MAKE) --no-print-directory armdeps

# The cross compiler, its C headers and QEMU: the generated firmware is built for the
# profile's Cortex-M and run in QEMU (tests skip, naming these packages, without them).
armdeps:
	@if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
		|| [ ! -f /usr/include/newlib/stdint.h ]; then $(MAKE) --no-print-directory _apt \
		PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"; fi

_apt:
	$(call apt_install,$(PKGS))

demo: $(STAMP) data armdeps
	$(PY) -m squeezelab.demo

test: $(STAMP) sysdeps
	$(PY) -m pytest -q --durations=30

bench: $(STAMP) data
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# The paper's Figure 3, Table 2 (with its pruned row swept) and Table 3 on Fashion-MNIST, and
# the talk's three claims (hours; see docs/reproduction.md).
reproduce: $(STAMP) data
	$(PY) benchmarks/paper_sweeps.py run
	$(PY) benchmarks/paper_sweeps.py plots --page docs/reproduction.md
	$(PY) benchmarks/fmnist_accuracy.py
	$(PY) benchmarks/compress_fmnist.py
	$(PY) benchmarks/compress_fmnist.py --sparsity 0 --centroid-epochs 0 --bits 8,6,5,4 --out benchmarks/results/compress_fmnist_dense.json
	$(PY) benchmarks/prune_sweep.py
	$(PY) benchmarks/talk_claims.py

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) out
