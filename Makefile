# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup demo test bench help
help:
	@echo "make demo   - set up, then run the main job on the bundled sample photo (out/demo/)"
	@echo "make test   - set up, then run the test suite"
	@echo "make bench  - set up, then run the benchmarks (MindSpore vs PyTorch, same run)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) demo.py

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/run.py
