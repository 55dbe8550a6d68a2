// A run of a tower's frozen pre-norm blocks (ClipBlock, bidirectional attention, as the vision tower's) from one
// layer to another, for heads that sit between the tower's layers and need the gradient of their outputs back
// through the layers that follow (MVFA-AD's adapters rewrite the residual stream, so the next layers see them).
// The weights are frozen: the backward gives the gradient of a block's input only (every matmul backward is
// dinp = dout · W), llm.c style over the op table's CPU kernels (model/ops_infer.h).
//
// Layers are 1-based as Hugging Face's hidden_states: block l maps the stream after layer l-1 to the stream after
// layer l. A keeping run stores, per layer of [first, last] given at creation, what the backward needs (the
// inputs of the LayerNorms, their statistics, q|k|v, the attention probabilities, the MLP pre-activations); an
// inference run keeps nothing and reuses one set of buffers.
#ifndef MODEL_FROZEN_BLOCKS_H
#define MODEL_FROZEN_BLOCKS_H

#include "model/clip_model.h"

typedef struct FrozenBlocks FrozenBlocks;

// blocks (shape->layers) of one tower; first..last (1-based) the layers this run may apply. NULL with err_set
// for a range outside 1..layers.
FrozenBlocks *frozen_blocks_new(const ClipBlock *blocks, const TowerShape *shape, int first, int last, int keep);
void frozen_blocks_free(FrozenBlocks *f);

// y (B,T,W) = blocks from..to applied to x (B,T,W) (from > to: y = x); y may be x. A keeping run records the
// activations of these layers for frozen_blocks_backward, overwriting what an earlier forward kept for them.
// Every call of one training step must use the same B and T. -1 with err_set for layers outside the run's range.
int frozen_blocks_forward(FrozenBlocks *f, float *y, const float *x, int from, int to, int B, int T);

// dx (B,T,W) = the gradient of <dy, y> with respect to x through blocks to..from of the last forward over them
// (a keeping run); dx may be dy (then it is overwritten). -1 with err_set when the run keeps nothing or holds no
// forward of those layers at that size.
int frozen_blocks_backward(FrozenBlocks *f, float *dx, const float *dy, int from, int to);

#endif
