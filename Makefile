# Two commands matter on a fresh Debian / Raspberry Pi OS machine:
#   make demo   set up .venv and run the demo (national stand-in + hub + fleet on loopback)
#   make test   set up and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps demo hub test test-arm64 test-fast fuzz lint bench image bundle i18n clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || scripts/install-system-deps base
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP)

# Debian packages the tests use (chromium, sshd, iproute2...): listed in scripts/system-deps.d/
system-deps:
	scripts/install-system-deps test

demo: setup
	$(VENV)/bin/appliance demo

hub: setup
	$(VENV)/bin/appliance hub --demo

test: setup system-deps
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -p no:cacheprovider

# The Raspberry Pi's image built, read and booted, alone, with the Pi 3 SoC's trial reboot
# under QEMU's raspi3b (tests/image/test_arm64.py; make test runs the rest of it, last)
test-arm64: setup system-deps
	UPAZILA_RASPI3B=1 $(PY) -m pytest -q -p no:cacheprovider tests/image/test_arm64.py

test-fast: setup
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

# The OpenAPI fuzzer with many more cases than make test runs (and new ones each time);
# its summary goes to artifacts/fuzz-summary.json. FUZZ_EXAMPLES=... to go further.
FUZZ_EXAMPLES ?= 200
fuzz: setup
	HUB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HUB_FUZZ_RANDOM=1 $(PY) -m pytest -q -s \
	  -p no:cacheprovider --timeout=0 tests/hub/test_openapi_fuzz.py -k fuzz_hub

lint: setup
	$(VENV)/bin/ruff check appliance tests bench
	$(VENV)/bin/mypy appliance
	$(VENV)/bin/lint-imports --no-cache

# Refresh the Bangla/English catalogues (appliance/locale/*/LC_MESSAGES/appliance.po) from
# the source's N_/tr/t calls; then translate the new msgids in bn. `appliance i18n check` fails
# while one is missing (tests/test_i18n_catalog.py runs it too).
i18n: setup
	$(VENV)/bin/appliance i18n extract

bench: setup
	$(PY) -m bench

# The SD image from Debian's archive (image/README.md): ARCH=arm64 (default, the Pi) or amd64
ARCH ?= arm64
image:
	scripts/install-system-deps image
	image/build.sh --arch $(ARCH)

# A signed RAUC bundle of the image's root slot (make image first), for `appliance fleet
# add-release`: UPDATE_SIGNING_CERT/UPDATE_SIGNING_KEY are national's
bundle:
	image/bundle.sh --arch $(ARCH)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
