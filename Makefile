# Two commands for a fresh machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU machines: the CPU build of torch (an unpinned torch pulls several GB of CUDA packages).
# On a GPU machine: make install TORCH=torch
TORCH  ?= torch==2.13.0

.PHONY: install browser demo test test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt "$(TORCH)"
	$(BIN)/pip install -q -c constraints.txt -e '.[rl,serve,dev,ray]'
	touch $@

demo: install
	$(BIN)/r1zero run recipes/tiny-zero.yaml --overwrite

# The chat page's browser test drives Debian's Chromium (no browser downloads needed).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  apt-get install -y -qq chromium chromium-driver >/dev/null; } || echo "no chromium: the browser test will skip"

test: install browser
	$(BIN)/python -m pytest -q

test-all: install browser
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) runs
