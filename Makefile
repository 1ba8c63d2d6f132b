# Two commands do everything on a fresh machine:
#   make run    environment if missing, data if missing, then the whole pipeline locally
#   make test   environment if missing, then the test suite
# Offline: make run DATA=/path/to/aclImdb_v1.tar.gz   (or an aclImdb folder, or a text,label CSV)

SHELL := /bin/bash
VENV ?= .venv
WORKDIR ?= workdir
DATA ?=
ARGS ?=
PYTEST_ARGS ?=
IMAGE ?= imdb-sentiment:dev
CLI := $(VENV)/bin/imdb-pipeline
# A machine of this project's CI/dev fleet has the labeled archive here (no internet to Stanford).
SHARED_ARCHIVE := ../shared/data/imdb/aclImdb_v1.labeled.tar.gz

.PHONY: setup run test data lock bench bench-s3 clean image

setup:
	@bash scripts/setup_env.sh

data: setup
	@if [ -d data/aclImdb ]; then echo "data/aclImdb is present"; \
	else $(CLI) data download --dest data; fi

run: setup
	@set -e; data="$(DATA)"; \
	if [ -z "$$data" ]; then \
	  if [ -d data/aclImdb ]; then data=data/aclImdb; \
	  elif [ -f "$(SHARED_ARCHIVE)" ]; then data="$(SHARED_ARCHIVE)"; echo "using $$data"; \
	  else $(CLI) data download --dest data; data=data/aclImdb; fi; \
	fi; \
	$(CLI) run --data "$$data" --workdir "$(WORKDIR)" $(ARGS)

test: setup image
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Re-resolve requirements.in (+ overrides.txt) into requirements.lock; commit the result.
lock: setup
	UV_PYTHON_DOWNLOADS=never $(VENV)/bin/uv pip compile --python-version 3.10 --override overrides.txt \
	  -o requirements.lock requirements.in

bench: setup
	$(VENV)/bin/python bench/full_pipeline.py $(ARGS)

# The full-data pipeline from and to a SeaweedFS bucket: a local run and the compiled kfp spec
# through the harness (bench/object_storage.py).
bench-s3: setup
	$(VENV)/bin/python bench/object_storage.py $(ARGS)

clean:
	rm -rf $(WORKDIR) workdir-bench workdir-bench-s3 .pytest_cache

# The task image for Kubeflow (kubeflow/Dockerfile), built offline: scripts/build_image.sh.
image: setup
	@IMAGE="$(IMAGE)" bash scripts/build_image.sh
