# settlekernel: every target sets up .venv itself, so a fresh clone needs only `make demo`
# or `make test`. Long fuzzing and proof runs have targets of their own.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Budget for the symbolic checks in `make test`; `make verify` spends more.
CROSSHAIR_TIMEOUT ?= 4

.PHONY: demo test lint typecheck unit crosshair package-check docs bench crash fuzz verify clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,docs]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(VENV)/.bench-installed

demo: $(STAMP)
	$(BIN)/settlekernel demo

test: lint typecheck unit crosshair package-check

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard src tests bench tools)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q --hypothesis-profile=ci

crosshair: $(STAMP)
	$(BIN)/python tools/crosshair_check.py --timeout $(CROSSHAIR_TIMEOUT)

# A fresh venv with a plain `pip install .` (no extras): every command's --help and -h, demo,
# verify, audit, and the one-line message of each command that needs an extra.
package-check: $(STAMP)
	$(BIN)/python tools/package_check.py

# The API reference from the docstrings (pdoc) into build/docs; fails on any pdoc warning.
# tests/test_docs.py builds it too, so `make test` checks it.
docs: $(STAMP)
	$(BIN)/python tools/api_docs.py build/docs

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/margin_bench.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/journal_bench.py
	$(BIN)/python bench/stress_bench.py
	$(BIN)/python bench/capacity_bench.py

# Long adversarial fuzzing: the CI stateful suite and the attacker search (issue 12) with many
# more examples and steps, the
# hostile corpus at full size (over 10,000 lines through the library, `run` and the journal,
# 2,000 hostile objects) and 1,000 byte edits and 600 row edits of a real journal file.
fuzz: $(STAMP)
	$(BIN)/pytest -q --hypothesis-profile=fuzz tests/test_stateful.py
	SETTLEKERNEL_FUZZ=1 $(BIN)/pytest -q --hypothesis-profile=fuzz tests/test_attacker.py
	SETTLEKERNEL_FUZZ=1 $(BIN)/pytest -q tests/test_hostile.py tests/test_corruption.py

# The long crash loop: a journal writer killed with SIGKILL 200 times (`make test` does 50).
crash: $(STAMP)
	$(BIN)/pytest -q -m slow tests/test_crash.py

# Every z3 theorem for the built-in rules (pass RULES=file.toml for others), then CrossHair
# over every contract with the full symbolic budget.
verify: $(STAMP)
	$(BIN)/settlekernel verify $(if $(RULES),--rules $(RULES),)
	$(BIN)/python tools/crosshair_check.py --timeout 60

clean:
	rm -rf $(VENV) .hypothesis .mypy_cache .ruff_cache .pytest_cache build src/*.egg-info
