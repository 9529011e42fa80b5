# Two entry points, both idempotent (a second run only checks stamps):
#   make run   install, then `ravelive serve` on the bundled default model
#   make test  install with test extras, then run the whole test suite
#
# System packages are installed with apt-get when run as root; otherwise the
# missing ones are named with the command that installs them.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Extra pip options for torch, e.g. TORCH_PIP_OPTIONS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_OPTIONS ?=
SERVE_ARGS ?=

RUNTIME_DEBS = libportaudio2 libsndfile1
TEST_DEBS = $(RUNTIME_DEBS) jackd2 puredata-core liblo-tools sox espeak-ng

BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test install install-test system-runtime system-test clean

run: install
	$(BIN)/ravelive serve $(SERVE_ARGS)

test: install-test
	$(BIN)/python -m pytest

install: system-runtime $(VENV)/.stamp-install
install-test: system-test $(VENV)/.stamp-install-test

system-runtime:
	@./tools/ensure-debs $(RUNTIME_DEBS)

system-test:
	@./tools/ensure-debs $(TEST_DEBS)

# Debian's python3 ships venv separately: install python3-venv when it is missing
$(VENV)/.stamp-venv:
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || ./tools/ensure-debs python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

# torch first: a bare `torch` requirement with no torch installed pulls the CUDA build
$(VENV)/.stamp-torch: $(VENV)/.stamp-venv
	$(PIP) install --quiet $(TORCH_PIP_OPTIONS) "$(TORCH_SPEC)"
	touch $@

$(VENV)/.stamp-install: $(VENV)/.stamp-torch pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.stamp-install-test: $(VENV)/.stamp-torch pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	touch $@ $(VENV)/.stamp-install

clean:
	rm -rf $(VENV) *.egg-info
