/*
 * Stand-in model for testing the build and run plumbing (CMake, runner, QEMU, instruction counting) without the
 * code generator or the kernels. It implements the generated-model ABI of docs/engine_abi.md with three "layers"
 * of plain integer/float arithmetic; tests/test_toolchain.py computes the same function in Python.
 *
 *   layer 0 (64 B):  l0[i] = sat8(x[i] + w[i]),  w[i] = (37 * i) % 41 - 20 (a const table, in flash)
 *   layer 1 (16 B):  acc = l0[4j] + l0[4j+1] + l0[4j+2] + l0[4j+3]
 *                    MF_REQUANT_FLOAT: sat8(round_half_even((float)acc * 0.375f))
 *                    MF_REQUANT_FIXED: sat8((acc * 3 + 4) >> 3)   (arithmetic shift: round half up)
 *   layer 2 (16 B):  y[j] = sat8(l1[j] - (l1[(j + 5) % 16] >> 1) + j) (the model output)
 *
 * mf_model_invoke() returns -1 (an MF_ARG_ERROR-like status) when the first four input bytes are all -128, so that
 * tests can exercise the runner's error path.
 */
#ifndef MF_TESTMODEL_MODEL_H
#define MF_TESTMODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define MF_MODEL_INPUT_BYTES 64
#define MF_MODEL_OUTPUT_BYTES 16
/* Deliberately large: checks that a big arena in .bss links and runs on every QEMU machine. */
#define MF_MODEL_ARENA_BYTES (256 * 1024)
#define MF_MODEL_NUM_LAYERS 3

int8_t *mf_model_input(void);
const int8_t *mf_model_output(void);
int mf_model_invoke(void);
#ifdef MF_LAYER_DUMP
void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes);
#endif

#endif /* MF_TESTMODEL_MODEL_H */
