// A pickle interpreter for the state dicts torch.save writes (protocol 2, the common protocol-4 opcodes too):
// enough of the pickle machine to rebuild an OrderedDict of name -> tensor reference, nothing that executes code.
// Only the callables torch.save emits for tensors are accepted (an allow-list), and every read is bounds-checked.
#ifndef MODEL_TORCH_PICKLE_H
#define MODEL_TORCH_PICKLE_H

#include <stddef.h>
#include <stdint.h>

// A tensor as the pickle describes it: a view (offset, size, stride) of a storage saved as a zip record.
typedef struct {
    char *name;
    char *storage_key;            // the record archive/data/KEY
    char storage_type[32];        // "FloatStorage", "HalfStorage", ...
    int64_t storage_numel;        // elements the storage holds, as the pickle declares
    int64_t offset;               // storage_offset, in elements
    int ndim;
    int64_t size[8], stride[8];
} PickledTensor;

// Runs the pickle pkl[0, n) and collects the top-level dict's tensor entries (other values are skipped).
// label names the pickle in messages ("dir/pytorch_model.bin: data.pkl"). -1 with err_set on anything malformed.
int torch_pickle_state_dict(const unsigned char *pkl, size_t n, const char *label, PickledTensor **out, int *count);
void torch_pickle_free(PickledTensor *t, int count);
// Bytes per element of a torch storage type ("FloatStorage" -> 4); 0 if unknown.
int torch_storage_elem_size(const char *storage_type);

#endif
