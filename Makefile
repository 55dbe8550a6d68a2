# KAnoCLIP harness. `make` installs what is missing and builds build/kanoclip; `make test` installs what is missing
# (the test oracles too), builds and tests; `make experiment [CONFIG=experiments/x.yaml] [ARGS="key=value ..."]` runs
# an experiment (the demo by default).

CC      ?= gcc
# The repository's root, so that `make -f path/to/Makefile` from elsewhere finds the project's scripts.
ROOT    := $(dir $(abspath $(firstword $(MAKEFILE_LIST))))
BUILD   := build
PKGS    := openblas hdf5 yaml-0.1 libcurl libcjson libpng libjpeg zlib libzip libcrypto

# Packages first, then flags, then compiles: $(BUILD)/pkg.mk (PKG_CFLAGS, PKG_LIBS, OPENBLAS_DIR from pkg-config) is
# made by a rule that first runs scripts/deps.sh for what the goals need, and make remakes an included makefile
# before anything else and restarts with it. So every compile sees the flags and none runs beside apt-get, with -j
# too. What the goals need (DEPS_SET): bench (and deps) everything, test/test-build/fixtures Criterion and the Python
# oracles too, the goals that build and run the program only that; other file goals (scripts/gpu_check.sh's
# binaries, on machines it has checked) install nothing, and `clean` and `gpu-check` do not read pkg-config at all.
# `make DEPS_SET=` skips the install step.
GOALS    := $(or $(MAKECMDGOALS),all)
DEPS_SET ?= $(if $(filter deps bench,$(GOALS)),bench,$(if $(filter test test-build fixtures,$(GOALS)),test,$(if \
  $(filter all experiment tables plots paper grid tiny-clip,$(GOALS)),build)))
ifneq ($(filter-out clean gpu-check,$(GOALS)),)
include $(BUILD)/pkg.mk
endif
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
# cuDNN (optional too): where its graph API header is found (CUDNN_HOME, the toolkit, /usr), the fused attention of
# model/cuda/attention_cudnn.cu is built in (KANOCLIP_CUDNN). libcudnn.so.9 is opened at run time, not linked, so
# a binary built here still starts where it is missing (attention then runs on the other kernels). NO_CUDNN=1 skips.
ifneq ($(NO_CUDNN),1)
CUDNN_INC := $(firstword $(foreach d,$(CUDNN_HOME) $(CUDA_HOME) /usr,$(if $(wildcard $(d)/include/cudnn_graph.h),$(abspath $(d)/include))))
endif
ifneq ($(CUDNN_INC),)
NVCCFLAGS += -DKANOCLIP_CUDNN $(if $(filter /usr/include,$(CUDNN_INC)),,-I$(CUDNN_INC))
LDLIBS    += -ldl
endif
endif
endif
endif

LIB_SRC := $(sort $(shell find common model datasets metrics harness -name '*.c' ! -path harness/cli/main.c 2>/dev/null))
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

.PHONY: all deps test test-build fixtures bench experiment clean gpu-check tables plots paper grid tiny-clip FORCE
all: $(BUILD)/kanoclip

# Checked on every run (FORCE), rewritten only when its text changes: a fresh tree restarts make once, a built one
# not at all; on the restart (MAKE_RESTARTS) the file is taken as it is.
$(BUILD)/pkg.mk: $(if $(MAKE_RESTARTS),,FORCE)
	@$(if $(DEPS_SET),bash $(ROOT)scripts/deps.sh $(DEPS_SET))
	@mkdir -p $(@D)
	@cflags=$$(pkg-config --cflags $(PKGS)) && libs=$$(pkg-config --libs $(PKGS)) && \
	  libdir=$$(pkg-config --variable=libdir openblas) || \
	  { echo "make: pkg-config cannot find $(PKGS) (make deps, or scripts/deps.sh, installs them)" >&2; exit 1; }; \
	printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\nOPENBLAS_DIR := %s\n' "$$cflags" "$$libs" "$$libdir" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# The install itself happens while $(BUILD)/pkg.mk is remade (DEPS_SET=bench for this goal).
deps: ;

$(BUILD)/kanoclip: $(BUILD)/harness/cli/main.o $(LIB_OBJ)
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

# The heads' and baselines' suites against PyTorch run a second time with every GEMM on OpenBLAS: parity holds on
# both kernels (model/gemm.h).
GEMM_PARITY := test_ops_core test_deform_attn test_kanoclip_ops test_kanoclip test_baselines test_mvfa
test: test-build fixtures
	@bash scripts/run_tests.sh $(TEST_BIN) $(ASAN_BIN) $(GEMM_PARITY:%=KANOCLIP_GEMM=openblas:$(BUILD)/tests/%)

bench: all $(BENCH_BIN) fixtures
	@for s in $(sort $(wildcard tests/bench_*.sh)); do bash $$s || exit 1; done

experiment: all
	$(BUILD)/kanoclip experiment $(CONFIG) $(ARGS)

# `make tables` / `make plots` read every folder under RESULTS through a shell glob (so a folder name with spaces
# stays one argument); kanoclip skips, with a note, the folders that are not finished runs (grid folders, unfinished
# runs). RUNS="DIR..." picks run folders instead.
RESULTS ?= results
RUNS ?= "$(RESULTS)"/*/
TABLES_OUT ?= paper/tables
FIGURES_OUT ?= paper/figures
GRID ?= experiments/grids/example.yaml
tables: all
	$(BUILD)/kanoclip tables $(RUNS) --out "$(TABLES_OUT)" --paper experiments/paper_numbers.csv
plots: all
	$(BUILD)/kanoclip plots $(RUNS) --out "$(FIGURES_OUT)"
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
