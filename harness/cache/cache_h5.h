// HDF5 helpers shared by the caches: the float16 file type, string/int attributes, quiet error stacks.
#ifndef HARNESS_CACHE_H5_H
#define HARNESS_CACHE_H5_H

#include <hdf5.h>

// IEEE 754 binary16, little-endian (HDF5 1.10 has no predefined one; this is the type h5py writes for float16).
// Used as both file and memory type with bits from cache_float16.h, so HDF5 converts nothing: its own
// float->half conversion truncates subnormals. Caller closes it with H5Tclose.
hid_t h5_float16_type(void);
// Turns off HDF5's automatic error-stack printing (we report one line ourselves).
void h5_quiet(void);
// The operating system's reason for a failed HDF5 write ("No space left on device"): the errno HDF5's file driver
// left. Callers set errno = 0 before the HDF5 call, so that an older errno is not reported.
const char *h5_os_reason(void);
int h5_set_attr_str(hid_t obj, const char *name, const char *value);
int h5_set_attr_long(hid_t obj, const char *name, long value);
// Reads an attribute as text (strings as they are, integers in decimal) into buf; -1 if absent or unreadable.
int h5_get_attr_text(hid_t obj, const char *name, char *buf, int size);

#endif
