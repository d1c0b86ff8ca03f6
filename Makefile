# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup browser demo test test-slow app bench help
help:
	@echo "make demo   - set up, then run the main job on the bundled sample photo (out/demo/)"
	@echo "make test   - set up, then run the test suite"
	@echo "make test-slow - the heavy end-to-end checks the suite leaves out (pytest -m slow, about 3 minutes)"
	@echo "make app    - set up, then serve the web demo on http://127.0.0.1:7860"
	@echo "make bench  - set up, then run the benchmarks (MindSpore vs PyTorch, same run)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) demo.py

browser:
	@bash scripts/setup_browser.sh

test: setup browser
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

app: setup
	$(PY) app.py

bench: setup
	$(PY) bench/run.py
