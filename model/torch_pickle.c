// The pickle machine, restricted to what torch.save puts in data.pkl. Objects live in an arena freed at the end;
// GLOBAL only resolves an allow-list (OrderedDict, torch's tensor rebuild functions and storage types), so
// a hostile pickle can at worst be refused.
#include "model/torch_pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef enum { PK_MARK, PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL,
               PK_STORAGE, PK_TENSOR } PkType;

typedef struct PkObj {
    PkType type;
    int64_t i;
    double f;
    char *s;                      // str/bytes (NUL-terminated copy); global: "module name"; storage: key
    size_t len;
    struct PkObj **items;         // tuple/list items; dict: key, value, key, value, ...
    int n, cap;
    PickledTensor *tensor;        // PK_TENSOR; PK_STORAGE keeps type/numel in tensor too
} PkObj;

enum { MAX_STACK = 1 << 20, MAX_MEMO = 1 << 22, MAX_ITEMS = 1 << 24 };

typedef struct {
    const unsigned char *p, *start, *end;
    const char *label;
    PkObj **all;                  // arena
    size_t nall, capall;
    PkObj **stack;
    int sp, stack_cap;
    PkObj **memo;
    size_t memo_cap, memo_len;      // memo_len: entries set, where MEMOIZE puts the next one
    const char *tensor_name;      // the dict key whose value is being rebuilt, for messages
} Vm;

static PkObj MARK_OBJ = {.type = PK_MARK};

static int vm_err(Vm *vm, const char *fmt, const char *detail) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, detail);
    if (vm->tensor_name)
        return err_set("%s: tensor %s: byte %td: %s", vm->label, vm->tensor_name, vm->p - vm->start, msg);
    return err_set("%s: byte %td: %s", vm->label, vm->p - vm->start, msg);
}

static PkObj *new_obj(Vm *vm, PkType type) {
    if (vm->nall == vm->capall) {
        size_t cap = vm->capall ? 2 * vm->capall : 1024;
        PkObj **a = realloc(vm->all, cap * sizeof *a);
        if (!a) return NULL;
        vm->all = a;
        vm->capall = cap;
    }
    PkObj *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->type = type;
    vm->all[vm->nall++] = o;
    return o;
}

static int push(Vm *vm, PkObj *o) {
    if (!o) return vm_err(vm, "%s", "out of memory");
    if (vm->sp == vm->stack_cap) {
        if (vm->stack_cap >= MAX_STACK) return vm_err(vm, "%s", "stack deeper than any state dict needs");
        int cap = vm->stack_cap ? 2 * vm->stack_cap : 256;
        PkObj **s = realloc(vm->stack, (size_t)cap * sizeof *s);
        if (!s) return vm_err(vm, "%s", "out of memory");
        vm->stack = s;
        vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = o;
    return 0;
}

static PkObj *pop(Vm *vm) {
    if (vm->sp == 0 || vm->stack[vm->sp - 1] == &MARK_OBJ) {
        vm_err(vm, "%s", "pop from an empty stack (or past a MARK)");
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static PkObj *top(Vm *vm) {
    if (vm->sp == 0 || vm->stack[vm->sp - 1] == &MARK_OBJ) {
        vm_err(vm, "%s", "empty stack");
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

// Index of the topmost MARK, -1 with err_set if there is none.
static int find_mark(Vm *vm) {
    for (int i = vm->sp - 1; i >= 0; i--)
        if (vm->stack[i] == &MARK_OBJ) return i;
    return vm_err(vm, "%s", "no MARK on the stack");
}

static int append_item(Vm *vm, PkObj *seq, PkObj *item) {
    if (seq->n == seq->cap) {
        if (seq->cap >= MAX_ITEMS) return vm_err(vm, "%s", "container too large");
        int cap = seq->cap ? 2 * seq->cap : 8;
        PkObj **it = realloc(seq->items, (size_t)cap * sizeof *it);
        if (!it) return vm_err(vm, "%s", "out of memory");
        seq->items = it;
        seq->cap = cap;
    }
    seq->items[seq->n++] = item;
    return 0;
}

// Appends without looking for an equal key (linear time on hostile input); a state dict never repeats a name,
// and the checkpoint table refuses one that does.
static int dict_set(Vm *vm, PkObj *d, PkObj *k, PkObj *v) {
    if (d->type != PK_DICT) return vm_err(vm, "%s", "SETITEM on something that is not a dict");
    if (append_item(vm, d, k) || append_item(vm, d, v)) return -1;
    return 0;
}

static int need(Vm *vm, size_t n) {
    if ((size_t)(vm->end - vm->p) < n) return vm_err(vm, "%s", "pickle ends inside an opcode's argument (truncated)");
    return 0;
}

static uint64_t read_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int push_string(Vm *vm, PkType type, size_t len) {
    if (need(vm, len)) return -1;
    PkObj *o = new_obj(vm, type);
    if (!o || !(o->s = malloc(len + 1))) return vm_err(vm, "%s", "out of memory");
    memcpy(o->s, vm->p, len);
    o->s[len] = '\0';
    o->len = len;
    vm->p += len;
    return push(vm, o);
}

static int push_int(Vm *vm, int64_t v) {
    PkObj *o = new_obj(vm, PK_INT);
    if (o) o->i = v;
    return push(vm, o);
}

// Pops everything above the topmost MARK (and the MARK) into a new tuple or list.
static int collect_to_mark(Vm *vm, PkType type) {
    int m = find_mark(vm);
    if (m < 0) return -1;
    PkObj *o = new_obj(vm, type);
    if (!o) return vm_err(vm, "%s", "out of memory");
    for (int i = m + 1; i < vm->sp; i++)
        if (append_item(vm, o, vm->stack[i])) return -1;
    vm->sp = m;
    return push(vm, o);
}

static int tuple_n(Vm *vm, int n) {
    if (vm->sp < n) return vm_err(vm, "%s", "TUPLE needs more items than the stack holds");
    PkObj *o = new_obj(vm, PK_TUPLE);
    if (!o) return vm_err(vm, "%s", "out of memory");
    for (int i = vm->sp - n; i < vm->sp; i++) {
        if (vm->stack[i] == &MARK_OBJ) return vm_err(vm, "%s", "TUPLE over a MARK");
        if (append_item(vm, o, vm->stack[i])) return -1;
    }
    vm->sp -= n;
    return push(vm, o);
}

static int memo_put(Vm *vm, uint64_t idx) {
    PkObj *o = top(vm);
    if (!o) return -1;
    if (idx >= MAX_MEMO) return vm_err(vm, "%s", "memo index too large");
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 256;
        while (cap <= idx) cap *= 2;
        PkObj **m = realloc(vm->memo, cap * sizeof *m);
        if (!m) return vm_err(vm, "%s", "out of memory");
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = cap;
    }
    if (!vm->memo[idx]) vm->memo_len++;
    vm->memo[idx] = o;
    return 0;
}

static int memo_get(Vm *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx]) return vm_err(vm, "%s", "GET of a memo entry never PUT");
    return push(vm, vm->memo[idx]);
}

// Storage types torch.save names, with their element sizes.
static const struct {
    const char *name;
    int size;
} STORAGE_TYPES[] = {
    {"FloatStorage", 4}, {"HalfStorage", 2},  {"BFloat16Storage", 2}, {"DoubleStorage", 8},
    {"LongStorage", 8},  {"IntStorage", 4},   {"ShortStorage", 2},    {"CharStorage", 1},
    {"ByteStorage", 1},  {"BoolStorage", 1},  {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16},
};

int torch_storage_elem_size(const char *storage_type) {
    for (size_t i = 0; i < sizeof STORAGE_TYPES / sizeof STORAGE_TYPES[0]; i++)
        if (strcmp(storage_type, STORAGE_TYPES[i].name) == 0) return STORAGE_TYPES[i].size;
    return 0;
}

static int is_global(const PkObj *o, const char *name) { return o && o->type == PK_GLOBAL && strcmp(o->s, name) == 0; }

static int op_global(Vm *vm, const char *module, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s %s", module, name);
    int ok = strcmp(full, "collections OrderedDict") == 0 || strcmp(full, "torch._utils _rebuild_tensor_v2") == 0 ||
             strcmp(full, "torch._utils _rebuild_tensor") == 0 || strcmp(full, "torch._utils _rebuild_parameter") == 0 ||
             strcmp(full, "torch._utils _rebuild_parameter_with_state") == 0;
    if (strcmp(module, "torch") == 0)
        for (size_t i = 0; i < sizeof STORAGE_TYPES / sizeof STORAGE_TYPES[0]; i++)
            ok |= strcmp(name, STORAGE_TYPES[i].name) == 0;
    if (!ok) return vm_err(vm, "unsupported global '%s' (not a torch.save state dict?)", full);
    PkObj *o = new_obj(vm, PK_GLOBAL);
    if (!o || !(o->s = strdup(full))) return vm_err(vm, "%s", "out of memory");
    return push(vm, o);
}

// The reading of GLOBAL's two text lines "module\nname\n".
static int read_line(Vm *vm, char *buf, size_t size) {
    const unsigned char *nl = memchr(vm->p, '\n', vm->end - vm->p);
    if (!nl) return vm_err(vm, "%s", "GLOBAL without a newline (truncated)");
    size_t n = nl - vm->p;
    if (n >= size) return vm_err(vm, "%s", "GLOBAL name too long");
    memcpy(buf, vm->p, n);
    buf[n] = '\0';
    vm->p = nl + 1;
    return 0;
}

// ('storage', storage_type, key, location, numel) -> a storage reference.
static int op_persistent_load(Vm *vm) {
    PkObj *pid = pop(vm);
    if (!pid) return -1;
    if (pid->type != PK_TUPLE || pid->n != 5 || pid->items[0]->type != PK_STR || strcmp(pid->items[0]->s, "storage") != 0)
        return vm_err(vm, "%s", "persistent id is not a ('storage', type, key, location, numel) tuple");
    PkObj *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (type->type != PK_GLOBAL || strncmp(type->s, "torch ", 6) != 0)
        return vm_err(vm, "%s", "persistent id has no torch storage type");
    if (key->type != PK_STR || numel->type != PK_INT || numel->i < 0)
        return vm_err(vm, "%s", "persistent id has a bad key or element count");
    PkObj *o = new_obj(vm, PK_STORAGE);
    if (!o || !(o->tensor = calloc(1, sizeof *o->tensor)) || !(o->s = strdup(key->s)))
        return vm_err(vm, "%s", "out of memory");
    snprintf(o->tensor->storage_type, sizeof o->tensor->storage_type, "%s", type->s + 6);
    o->tensor->storage_numel = numel->i;
    return push(vm, o);
}

static int int_tuple(const PkObj *t, int64_t *out, int *n) {
    if (t->type != PK_TUPLE || t->n > 8) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->type != PK_INT || t->items[i]->i < 0) return -1;
        out[i] = t->items[i]->i;
    }
    *n = t->n;
    return 0;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
static int rebuild_tensor(Vm *vm, PkObj *args) {
    if (args->n < 4) return vm_err(vm, "%s", "_rebuild_tensor with fewer than 4 arguments");
    PkObj *storage = args->items[0], *offset = args->items[1];
    if (storage->type != PK_STORAGE) return vm_err(vm, "%s", "_rebuild_tensor without a storage");
    if (offset->type != PK_INT || offset->i < 0) return vm_err(vm, "%s", "_rebuild_tensor with a bad storage_offset");
    PkObj *o = new_obj(vm, PK_TENSOR);
    if (!o || !(o->tensor = calloc(1, sizeof *o->tensor)) || !(o->tensor->storage_key = strdup(storage->s)))
        return vm_err(vm, "%s", "out of memory");
    PickledTensor *t = o->tensor;
    memcpy(t->storage_type, storage->tensor->storage_type, sizeof t->storage_type);
    t->storage_numel = storage->tensor->storage_numel;
    t->offset = offset->i;
    int ns = 0, nt = 0;
    if (int_tuple(args->items[2], t->size, &ns) || int_tuple(args->items[3], t->stride, &nt) || ns != nt)
        return vm_err(vm, "%s", "_rebuild_tensor size/stride are not equal-length tuples of at most 8 non-negative ints");
    t->ndim = ns;
    return push(vm, o);
}

static int op_reduce(Vm *vm) {
    PkObj *args = pop(vm), *fn = args ? pop(vm) : NULL;
    if (!fn) return -1;
    if (args->type != PK_TUPLE) return vm_err(vm, "%s", "REDUCE arguments are not a tuple");
    if (is_global(fn, "collections OrderedDict")) return push(vm, new_obj(vm, PK_DICT));
    if (is_global(fn, "torch._utils _rebuild_tensor_v2") || is_global(fn, "torch._utils _rebuild_tensor"))
        return rebuild_tensor(vm, args);
    if (is_global(fn, "torch._utils _rebuild_parameter") || is_global(fn, "torch._utils _rebuild_parameter_with_state")) {
        if (args->n < 1 || args->items[0]->type != PK_TENSOR) return vm_err(vm, "%s", "_rebuild_parameter without a tensor");
        return push(vm, args->items[0]);
    }
    return vm_err(vm, "REDUCE of '%s', which a state dict does not use", fn->type == PK_GLOBAL ? fn->s : "(not a global)");
}

static int step(Vm *vm, int *stop) {
    if (vm->p >= vm->end) return vm_err(vm, "%s", "pickle ends before STOP (truncated)");
    unsigned char op = *vm->p++;
    char module[128], name[128];
    PkObj *a, *b, *c;
    int m;
    switch (op) {
    case 0x80: return need(vm, 1) ? -1 : (vm->p++, 0);                            // PROTO
    case 0x95: return need(vm, 8) ? -1 : (vm->p += 8, 0);                         // FRAME
    case '.': *stop = 1; return 0;                                                // STOP
    case '(': return push(vm, &MARK_OBJ);                                         // MARK
    case 'N': return push(vm, new_obj(vm, PK_NONE));
    case 0x88: case 0x89:                                                         // NEWTRUE / NEWFALSE
        a = new_obj(vm, PK_BOOL);
        if (a) a->i = op == 0x88;
        return push(vm, a);
    case 'K': if (need(vm, 1)) return -1; vm->p += 1; return push_int(vm, vm->p[-1]);
    case 'M': if (need(vm, 2)) return -1; vm->p += 2; return push_int(vm, (int64_t)read_le(vm->p - 2, 2));
    case 'J': if (need(vm, 4)) return -1; vm->p += 4; return push_int(vm, (int32_t)(uint32_t)read_le(vm->p - 4, 4));
    case 0x8a: case 0x8b: {                                                       // LONG1 / LONG4
        int w = op == 0x8a ? 1 : 4;
        if (need(vm, w)) return -1;
        uint64_t n = read_le(vm->p, w);
        vm->p += w;
        if (n > 8) return vm_err(vm, "%s", "integer wider than 64 bits");
        if (need(vm, n)) return -1;
        uint64_t v = read_le(vm->p, (int)n);
        if (n > 0 && n < 8 && (vm->p[n - 1] & 0x80)) v |= ~0ull << (8 * n);  // sign-extend
        vm->p += n;
        return push_int(vm, (int64_t)v);
    }
    case 'G': {                                                                   // BINFLOAT, big-endian
        if (need(vm, 8)) return -1;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | vm->p[i];
        vm->p += 8;
        a = new_obj(vm, PK_FLOAT);
        if (a) memcpy(&a->f, &bits, sizeof a->f);
        return push(vm, a);
    }
    case 'X': case 'T': case 'B':                                                 // BINUNICODE, BINSTRING, BINBYTES
        if (need(vm, 4)) return -1;
        vm->p += 4;
        return push_string(vm, op == 'B' ? PK_BYTES : PK_STR, read_le(vm->p - 4, 4));
    case 0x8c: case 'U': case 'C':                                                // SHORT_BINUNICODE/STRING/BYTES
        if (need(vm, 1)) return -1;
        vm->p += 1;
        return push_string(vm, op == 'C' ? PK_BYTES : PK_STR, vm->p[-1]);
    case 0x8d: case 0x8e:                                                         // BINUNICODE8, BINBYTES8
        if (need(vm, 8)) return -1;
        vm->p += 8;
        return push_string(vm, op == 0x8e ? PK_BYTES : PK_STR, read_le(vm->p - 8, 8));
    case ')': return push(vm, new_obj(vm, PK_TUPLE));                             // EMPTY_TUPLE
    case 't': return collect_to_mark(vm, PK_TUPLE);
    case 0x85: case 0x86: case 0x87: return tuple_n(vm, op - 0x84);               // TUPLE1..3
    case ']': return push(vm, new_obj(vm, PK_LIST));                              // EMPTY_LIST
    case 'l': return collect_to_mark(vm, PK_LIST);
    case '}': return push(vm, new_obj(vm, PK_DICT));                              // EMPTY_DICT
    case 'd':                                                                     // DICT
        if (collect_to_mark(vm, PK_LIST)) return -1;
        a = pop(vm);
        b = new_obj(vm, PK_DICT);
        if (!b) return vm_err(vm, "%s", "out of memory");
        if (a->n % 2) return vm_err(vm, "%s", "DICT with an odd number of items");
        for (int i = 0; i < a->n; i += 2)
            if (dict_set(vm, b, a->items[i], a->items[i + 1])) return -1;
        return push(vm, b);
    case 'a':                                                                     // APPEND
        if (!(a = pop(vm)) || !(b = top(vm))) return -1;
        if (b->type != PK_LIST) return vm_err(vm, "%s", "APPEND to something that is not a list");
        return append_item(vm, b, a);
    case 'e':                                                                     // APPENDS
        if ((m = find_mark(vm)) < 1) return m < 0 ? -1 : vm_err(vm, "%s", "APPENDS without a list");
        b = vm->stack[m - 1];
        if (b->type != PK_LIST) return vm_err(vm, "%s", "APPENDS to something that is not a list");
        for (int i = m + 1; i < vm->sp; i++)
            if (append_item(vm, b, vm->stack[i])) return -1;
        vm->sp = m;
        return 0;
    case 's':                                                                     // SETITEM
        if (!(c = pop(vm)) || !(b = pop(vm)) || !(a = top(vm))) return -1;
        vm->tensor_name = NULL;
        return dict_set(vm, a, b, c);
    case 'u':                                                                     // SETITEMS
        if ((m = find_mark(vm)) < 1) return m < 0 ? -1 : vm_err(vm, "%s", "SETITEMS without a dict");
        if ((vm->sp - m - 1) % 2) return vm_err(vm, "%s", "SETITEMS with an odd number of items");
        a = vm->stack[m - 1];
        for (int i = m + 1; i < vm->sp; i += 2)
            if (dict_set(vm, a, vm->stack[i], vm->stack[i + 1])) return -1;
        vm->sp = m;
        vm->tensor_name = NULL;   // the values are stored: later bytes belong to no tensor yet
        return 0;
    case '0': return pop(vm) ? 0 : -1;                                            // POP
    case '1': if ((m = find_mark(vm)) < 0) return -1; vm->sp = m; return 0;       // POP_MARK
    case '2': return (a = top(vm)) ? push(vm, a) : -1;                            // DUP
    case 'q': if (need(vm, 1)) return -1; vm->p += 1; return memo_put(vm, vm->p[-1]);
    case 'r': if (need(vm, 4)) return -1; vm->p += 4; return memo_put(vm, read_le(vm->p - 4, 4));
    case 0x94: return memo_put(vm, vm->memo_len);                                 // MEMOIZE
    case 'h': if (need(vm, 1)) return -1; vm->p += 1; return memo_get(vm, vm->p[-1]);
    case 'j': if (need(vm, 4)) return -1; vm->p += 4; return memo_get(vm, read_le(vm->p - 4, 4));
    case 'c':                                                                     // GLOBAL
        if (read_line(vm, module, sizeof module) || read_line(vm, name, sizeof name)) return -1;
        return op_global(vm, module, name);
    case 0x93:                                                                    // STACK_GLOBAL
        if (!(b = pop(vm)) || !(a = pop(vm))) return -1;
        if (a->type != PK_STR || b->type != PK_STR) return vm_err(vm, "%s", "STACK_GLOBAL of non-strings");
        return op_global(vm, a->s, b->s);
    case 'Q': return op_persistent_load(vm);                                      // BINPERSID
    case 'R': return op_reduce(vm);
    case 0x81:                                                                    // NEWOBJ: cls(*args)
        if (!(a = pop(vm)) || !(b = pop(vm))) return -1;
        if (!is_global(b, "collections OrderedDict")) return vm_err(vm, "%s", "NEWOBJ of something other than OrderedDict");
        return push(vm, new_obj(vm, PK_DICT));
    case 'b':                                                                     // BUILD: state is metadata here
        if (!(a = pop(vm)) || !top(vm)) return -1;
        return 0;
    default: {
        char hex[8];
        snprintf(hex, sizeof hex, "0x%02x", op);
        vm->p--;
        return vm_err(vm, "unknown or unsupported pickle opcode %s (corrupt data.pkl?)", hex);
    }
    }
}

// Tracks which dict key a rebuild belongs to: the key sits just below the rebuild callable on the stack.
static void note_tensor_name(Vm *vm) {
    if (vm->sp >= 2) {
        PkObj *fn = vm->stack[vm->sp - 1], *key = vm->stack[vm->sp - 2];
        if (fn->type == PK_GLOBAL && strncmp(fn->s, "torch._utils _rebuild", 21) == 0 && key->type == PK_STR)
            vm->tensor_name = key->s;
    }
}

void torch_pickle_free(PickledTensor *t, int count) {
    for (int i = 0; i < count; i++) {
        free(t[i].name);
        free(t[i].storage_key);
    }
    free(t);
}

int torch_pickle_state_dict(const unsigned char *pkl, size_t n, const char *label, PickledTensor **out, int *count) {
    Vm vm = {.p = pkl, .start = pkl, .end = pkl + n, .label = label};
    int rc = 0, stop = 0;
    while (!stop && rc == 0) {
        rc = step(&vm, &stop);
        if (rc == 0) note_tensor_name(&vm);
    }
    vm.tensor_name = NULL;
    PkObj *result = rc == 0 ? pop(&vm) : NULL;
    if (rc == 0 && !result) rc = -1;
    if (rc == 0 && result->type != PK_DICT) rc = vm_err(&vm, "%s", "the pickle does not hold a dict (not a state dict)");
    // A training checkpoint ({"epoch": ..., "state_dict": {...}, ...}, as open_clip saves them): its state dict.
    for (int i = 0; rc == 0 && i + 1 < result->n; i += 2)
        if (result->items[i]->type == PK_STR && !strcmp(result->items[i]->s, "state_dict") &&
            result->items[i + 1]->type == PK_DICT) {
            result = result->items[i + 1];
            break;
        }
    PickledTensor *ts = NULL;
    int nt = 0;
    if (rc == 0) {
        ts = calloc(result->n / 2 + 1, sizeof *ts);
        if (!ts) rc = err_set("%s: out of memory", label);
        for (int i = 0; rc == 0 && i + 1 < result->n; i += 2) {
            PkObj *k = result->items[i], *v = result->items[i + 1];
            if (k->type != PK_STR || v->type != PK_TENSOR) continue;
            ts[nt] = *v->tensor;
            ts[nt].name = strdup(k->s);
            ts[nt].storage_key = strdup(v->tensor->storage_key);
            if (!ts[nt].name || !ts[nt++].storage_key) rc = err_set("%s: out of memory", label);
        }
    }
    for (size_t i = 0; i < vm.nall; i++) {
        PkObj *o = vm.all[i];
        free(o->s);
        free(o->items);
        if (o->tensor) free(o->tensor->storage_key);
        free(o->tensor);
        free(o);
    }
    free(vm.all);
    free(vm.stack);
    free(vm.memo);
    if (rc != 0) {
        torch_pickle_free(ts, nt);
        return -1;
    }
    *out = ts;
    *count = nt;
    return 0;
}
