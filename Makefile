# The everyday commands. Each one installs what it needs first.
.PHONY: run test lint format images fuzz lock clean

run:            ## the whole system on embedded infrastructure (Ctrl-C stops it)
	bash scripts/run.sh

test:           ## every test: lint, unit, integration, e2e (core e2e on both backends)
	bash scripts/test.sh

lint:           ## ruff format --check, ruff check, mypy --strict
	bash scripts/bootstrap.sh
	bash scripts/lint.sh

format:
	bash scripts/bootstrap.sh
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

images:         ## build the offline container images
	bash scripts/bootstrap.sh
	bash scripts/docker-engine.sh
	bash scripts/build-images.sh

fuzz:           ## the long API fuzz: >= 100,000 schemathesis requests (bench/results/fuzz.md)
	bash scripts/bootstrap.sh
	mkdir -p .mfc-data
	MFC_FUZZ_SECONDS=55 MFC_FUZZ_REPORT=bench/results/fuzz.md MFC_TEST_BACKENDS=embedded \
	  .venv/bin/python -m pytest tests/e2e/test_contract_fuzz.py -p no:cacheprovider \
	  --basetemp=.mfc-data/fuzz

lock:           ## re-pin every third-party package after changing a pyproject
	bash scripts/bootstrap.sh
	( echo "# Exact versions of every third-party package (regenerate: make lock)."; \
	  .venv/bin/pip freeze --exclude-editable | grep -v '^-e' ) > constraints.txt

clean:
	rm -rf .venv .mfc-data .mypy_cache .ruff_cache
