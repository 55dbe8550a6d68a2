// The tensor table that the weight-file readers (safetensors.c, torch_zip.c) fill and checkpoint.c serves.
// Internal to model/: the towers use model/checkpoint.h.
#ifndef MODEL_CHECKPOINT_TABLE_H
#define MODEL_CHECKPOINT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"

enum { CK_MAX_DIMS = 8 };

typedef enum { CK_F32, CK_F16, CK_BF16, CK_UNSUPPORTED } CkDtype;

typedef struct {
    char *name;
    char dtype_name[32];            // as the file spells it: "F32", "I64", "LongStorage"
    CkDtype dtype;
    int ndim;
    int64_t shape[CK_MAX_DIMS];
    // safetensors: the bytes inside the mapping (already bounds-checked against it).
    const unsigned char *data;
    size_t nbytes;
    // torch zip: the storage the tensor views and its first element there; storage is -1 for safetensors.
    int storage;
    int64_t storage_offset;
    char *problem;                  // why the tensor cannot be served (non-contiguous strides), or NULL
    float *owned;                   // float32 copy made on first request (conversion or unaligned data)
} CkTensor;

// One `archive/data/KEY` record of a torch zip: raw little-endian elements, read on first use.
typedef struct {
    char *key;
    char dtype_name[32];
    CkDtype dtype;
    size_t elem_size;
    int64_t numel;
    int64_t zip_index;
    unsigned char *bytes;           // NULL until read
} CkStorage;

struct Checkpoint {
    char *path;
    CkTensor *tensors;              // sorted by name once the reader is done
    int count, cap;
    // safetensors
    void *map;
    size_t map_size;
    // torch zip
    void *zip;                      // zip_t *
    CkStorage *storages;
    int nstorages;
    char hash[65];
};

// Appends an empty tensor named name (copied); NULL on allocation failure.
CkTensor *ck_add_tensor(Checkpoint *ck, const char *name);
// Element count of a shape, -1 if it overflows int64 or a dimension is negative.
int64_t ck_numel(const int64_t *shape, int ndim);
// "[2, 3]" into buf.
const char *ck_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

// Readers: fill ck->tensors from ck->path; -1 with err_set naming the file (and tensor) on a bad file.
int safetensors_read(Checkpoint *ck);
int torch_zip_read(Checkpoint *ck);
// Reads storage s into ck->storages[s].bytes (once); tensor names the requested tensor in messages.
int torch_zip_load_storage(Checkpoint *ck, int s, const char *tensor);
void torch_zip_close(Checkpoint *ck);

#endif
