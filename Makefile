# KAnoCLIP harness. `make` builds build/kanoclip; `make test` installs what is missing, builds and tests;
# `make experiment [CONFIG=experiments/x.yaml] [ARGS="key=value ..."]` runs an experiment (the demo by default).

CC      ?= gcc
BUILD   := build
PKGS    := openblas hdf5 yaml-0.1 libcurl libcjson libpng libjpeg zlib libzip libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPENBLAS_DIR := $(shell pkg-config --variable=libdir openblas 2>/dev/null)
CFLAGS  ?= -O3 -march=native
CFLAGS  += -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-format-truncation -I. $(PKG_CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lhdf5_hl -Wl,-rpath,$(OPENBLAS_DIR) -fopenmp -lm -lpthread

# CUDA sources compile only where nvcc and the toolkit's headers are found (design: never required).
# nvcc on PATH may be a wrapper script (e.g. /usr/local/bin/nvcc), so the toolkit root is taken from
# CUDA_HOME, else from nvcc's own TOP, else /usr/local/cuda: the first that holds the headers we include.
NVCC := $(shell command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
ifneq ($(NVCC),)
ifneq ($(NO_CUDA),1)
NVCC_TOP := $(shell $(NVCC) -v --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p' | head -n1)
CUDA_HOME := $(firstword $(foreach d,$(CUDA_HOME) $(NVCC_TOP) /usr/local/cuda,\
  $(if $(and $(wildcard $(d)/include/cuda_runtime_api.h),$(wildcard $(d)/include/cublas_v2.h)),$(abspath $(d)))))
CUDA_LIBDIR := $(firstword $(foreach d,lib64 lib,$(if $(wildcard $(CUDA_HOME)/$(d)/libcudart.so),$(CUDA_HOME)/$(d))))
CUDA_SRC  := $(shell find model -name '*.cu' 2>/dev/null)
ifeq ($(and $(CUDA_HOME),$(CUDA_LIBDIR)),)
$(info nvcc found at $(NVCC) but no CUDA toolkit headers/libraries beside it: building the CPU path only)
CUDA_SRC :=
endif
ifneq ($(CUDA_SRC),)
CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CFLAGS    += -DKANOCLIP_CUDA -I$(CUDA_HOME)/include
LDLIBS    += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lcublas -lcublasLt -lstdc++
NVCCFLAGS ?= -O3 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -std=c++17
endif
endif
endif

LIB_SRC := $(sort $(shell find common model datasets harness -name '*.c' ! -path harness/main.c 2>/dev/null))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_OBJ)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard tests/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
# Test suites also built with AddressSanitizer (file loaders and parsers that take untrusted bytes).
ASAN_TESTS := $(sort $(patsubst tests/%.asan,%,$(wildcard tests/*.asan)))
ASAN_BIN := $(ASAN_TESTS:%=$(BUILD)/asan/tests/%)
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o)
# PyTorch/scikit-learn reference scripts: tests/ref_NAME.py writes build/fixtures/NAME/.
REF_SCRIPTS := $(sort $(wildcard tests/ref_*.py))
REF_STAMPS  := $(REF_SCRIPTS:tests/ref_%.py=$(BUILD)/fixtures/%/.done)
PYTHON_REF  := /usr/bin/python3

CONFIG ?= experiments/demo.yaml
ARGS   ?=

.PHONY: all deps test test-build fixtures bench experiment clean gpu-check tables plots paper grid tiny-clip
all: deps $(BUILD)/kanoclip

deps:
	@bash scripts/deps.sh

$(BUILD)/kanoclip: $(BUILD)/harness/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I. -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcriterion

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O3,$(CFLAGS)) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -c -o $@ $<

$(BUILD)/asan/tests/%: tests/%.c $(ASAN_OBJ) $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O3,$(CFLAGS)) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -o $@ $< $(ASAN_OBJ) $(CUDA_OBJ) $(LDLIBS) -lcriterion

$(BUILD)/fixtures/%/.done: tests/ref_%.py
	@mkdir -p $(dir $@)
	$(PYTHON_REF) $< $(dir $@)
	@touch $@

fixtures: $(REF_STAMPS)

.SECONDARY: $(ASAN_OBJ) $(LIB_OBJ)

test-build: all $(TEST_BIN) $(ASAN_BIN) $(BENCH_BIN)

test: test-build fixtures
	@bash scripts/run_tests.sh $(TEST_BIN) $(ASAN_BIN)

bench: all $(BENCH_BIN) fixtures
	@for s in $(sort $(wildcard tests/bench_*.sh)); do bash $$s || exit 1; done

experiment: all
	$(BUILD)/kanoclip experiment $(CONFIG) $(ARGS)

RUNS ?= $(dir $(wildcard results/*/DONE))
GRID ?= experiments/grids/example.yaml
tables: all
	$(BUILD)/kanoclip tables $(RUNS) --out paper/tables --paper experiments/paper_numbers.csv
plots: all
	$(BUILD)/kanoclip plots $(RUNS) --out paper/figures
paper: tables plots
	@command -v pdflatex >/dev/null || { echo "make paper: pdflatex not found (apt-get install texlive-latex-recommended texlive-latex-extra); the tables and figures are in paper/tables and paper/figures" >&2; exit 1; }
	cd paper && pdflatex -interaction=nonstopmode -halt-on-error main.tex >/dev/null && pdflatex -interaction=nonstopmode -halt-on-error main.tex | tail -2
grid: all
	$(BUILD)/kanoclip grid $(GRID) --run

# The shipped tiny CLIP (models/tiny-clip/) from its recorded recipe and seeds (about 25 minutes on one core; one
# thread, so the weights are the same bytes on every run). An interrupted run resumes from models/tiny-clip.state/.
tiny-clip: all
	$(BUILD)/kanoclip pretrain experiments/tiny-clip.yaml $(ARGS)

# No `all` prerequisite: the GPU machine has no network for `deps`; the script builds or unpacks a bundle.
gpu-check:
	@bash scripts/gpu_check.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
