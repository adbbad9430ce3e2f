# The README's two commands. Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench summary

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m sr_models.training.demo

# one pytest-xdist worker per logical CPU, at most 4 (to bound memory); tests/conftest.py gives each one thread;
# work stealing keeps the minutes-long tests from leaving one worker alone at the end
test: $(STAMP)
	$(PY) -m pytest -n logical --maxprocesses 4 --dist worksteal $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/classifier.py
	$(PY) bench/context_heads.py --output bench/results/context_heads.md
	$(PY) bench/realtime.py --output bench/results/realtime.md
	$(PY) bench/export.py --threads 1 --clock cpu --models resnet50 sr_resnet50 "sr_resnet50 timm blocks" seresnet50 "resnet50 again" \
		--output bench/results/export.md
	$(PY) bench/export.py --threads 1 --clock cpu --models fcn_resnet50_d8 srnet_resnet50_d8 srnet_dfnet2 \
		--output bench/results/export_segmenters.md
	$(PY) bench/gate.py --output bench/results/gate.md
	$(PY) bench/gate.py --bf16 --output bench/results/gate_bf16.md
	$(PY) bench/gate_in_network.py --output bench/results/gate_in_network.md
	$(PY) bench/export_parity.py --output bench/results/export_parity.md
	$(PY) bench/import_time.py --output bench/results/import_time.md

summary: $(STAMP)
	$(PY) -m sr_models.summary
