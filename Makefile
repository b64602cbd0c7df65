# Two commands a fresh clone needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-police test lint soak bench bundle clean mosquitto chromium systemd-tools report-tools

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,sim]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/alarm-gateway demo

demo-police: setup
	$(BIN)/alarm-receiver demo

mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	  { echo "installing mosquitto"; (apt-get update -qq || sudo apt-get update -qq) && \
	    (apt-get install -y -qq mosquitto || sudo apt-get install -y -qq mosquitto); }

chromium:
	@[ -x /usr/bin/chromium ] || { echo "installing chromium"; \
	  (apt-get update -qq || sudo apt-get update -qq) && \
	  (apt-get install -y -qq chromium || sudo apt-get install -y -qq chromium) || \
	  echo "chromium unavailable: the browser tests will be skipped"; }

systemd-tools:
	@command -v systemd-analyze >/dev/null 2>&1 || { echo "installing systemd (systemd-analyze)"; \
	  (apt-get update -qq || sudo apt-get update -qq) && \
	  (apt-get install -y -qq systemd || sudo apt-get install -y -qq systemd) || \
	  echo "systemd-analyze unavailable: the unit verification test will be skipped"; }

# the monthly report's PDF: WeasyPrint needs Pango and a font with Vietnamese (DejaVu); its
# tests read the PDF back with poppler's pdftotext and pdftoppm
report-tools:
	@command -v pdftoppm >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || \
	  { echo "installing poppler-utils, pango, DejaVu fonts"; \
	  (apt-get update -qq || sudo apt-get update -qq) && \
	  (apt-get install -y -qq poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core || \
	   sudo apt-get install -y -qq poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core) || \
	  echo "poppler-utils unavailable: the PDF tests will be skipped"; }

lint: setup
	$(BIN)/ruff check gateway drivers firmware_stubs simulator receiver tests bench bundle
	$(BIN)/mypy

test: setup mosquitto chromium systemd-tools report-tools lint
	$(BIN)/pytest -q

soak: setup mosquitto
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(BIN)/pytest -q -m slow tests/test_chaos.py -s

bench: setup mosquitto
	$(BIN)/python -m bench.run_all

# Offline install bundles in dist/ (docs/install.md): this machine, Pi arm64 and armhf.
BUNDLE_PLATFORMS ?= --platform host --platform arm64 --platform armhf
bundle: setup
	$(BIN)/python bundle/build_bundle.py $(BUNDLE_PLATFORMS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
