// Facts recorded with a run: where the code came from, what the inputs were.
#ifndef HARNESS_PROVENANCE_H
#define HARNESS_PROVENANCE_H

// The git commit of the working directory and whether tracked files differ from it ("unknown"/-1 when git is
// missing or this is not a repository). commit gets 40 hex digits or "unknown".
void provenance_git(char commit[64], int *dirty);
// SHA-256 of a Hugging Face checkpoint folder's weights file (model.safetensors, else pytorch_model.bin).
// -1 with err_set when the folder has neither.
int provenance_weights_hash(const char *checkpoint_dir, char hex[65]);
// A manifest hash of a dataset folder: SHA-256 over the sorted "relative/path<TAB>size<LF>" lines of every
// regular file below root (names and sizes, not contents: cheap on large sets, and it moves when files are
// added, removed, renamed or rewritten with another size). *n_files gets the count. -1 with err_set.
int provenance_manifest_hash(const char *root, char hex[65], long *n_files);
// Current UTC time as ISO 8601 ("2026-01-31T12:00:00Z").
void provenance_now(char buf[32]);

#endif
