/* Stand-in model: see model.h for the function it computes. Depends on nothing but the C library headers. */
#include "model.h"

#ifndef MF_REQUANT_FLOAT
#define MF_REQUANT_FLOAT 1
#endif
#ifndef MF_REQUANT_FIXED
#define MF_REQUANT_FIXED 2
#endif
#ifndef MF_REQUANT_MODE
#define MF_REQUANT_MODE MF_REQUANT_FLOAT
#endif

#define MF_TEST_INPUT_OFFSET (MF_MODEL_ARENA_BYTES / 2)
#define MF_TEST_LAYER0_OFFSET 0
#define MF_TEST_LAYER1_OFFSET (MF_MODEL_ARENA_BYTES - 2 * MF_MODEL_OUTPUT_BYTES)
#define MF_TEST_OUTPUT_OFFSET (MF_MODEL_ARENA_BYTES - MF_MODEL_OUTPUT_BYTES)

static int8_t mf_arena[MF_MODEL_ARENA_BYTES] __attribute__((aligned(16)));

/* w[i] = (37 * i) % 41 - 20 */
static const int8_t mf_test_weights[MF_MODEL_INPUT_BYTES] = {
    -20, 17, 13, 9, 5, 1, -3, -7, -11, -15, -19, 18, 14, 10, 6, 2,
    -2, -6, -10, -14, -18, 19, 15, 11, 7, 3, -1, -5, -9, -13, -17, 20,
    16, 12, 8, 4, 0, -4, -8, -12, -16, -20, 17, 13, 9, 5, 1, -3,
    -7, -11, -15, -19, 18, 14, 10, 6, 2, -2, -6, -10, -14, -18, 19, 15,
};

static int8_t mf_sat8(int32_t value)
{
    if (value < -128) {
        return -128;
    }
    if (value > 127) {
        return 127;
    }
    return (int8_t)value;
}

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
/* Round half to even without libm; |value| < 2^22 so every step is exact in float32. */
static int32_t mf_round_half_even(float value)
{
    float floor_value = (float)(int32_t)value;
    float fraction;
    int32_t result;

    if (floor_value > value) {
        floor_value -= 1.0f;
    }
    fraction = value - floor_value;
    result = (int32_t)floor_value;
    if (fraction > 0.5f || (fraction == 0.5f && (result & 1) != 0)) {
        result += 1;
    }
    return result;
}
#endif

int8_t *mf_model_input(void)
{
    return &mf_arena[MF_TEST_INPUT_OFFSET];
}

const int8_t *mf_model_output(void)
{
    return &mf_arena[MF_TEST_OUTPUT_OFFSET];
}

int mf_model_invoke(void)
{
    const int8_t *input = &mf_arena[MF_TEST_INPUT_OFFSET];
    int8_t *layer0 = &mf_arena[MF_TEST_LAYER0_OFFSET];
    int8_t *layer1 = &mf_arena[MF_TEST_LAYER1_OFFSET];
    int8_t *output = &mf_arena[MF_TEST_OUTPUT_OFFSET];
    int index;

    if (input[0] == -128 && input[1] == -128 && input[2] == -128 && input[3] == -128) {
        return -1;
    }
    for (index = 0; index < MF_MODEL_INPUT_BYTES; ++index) {
        layer0[index] = mf_sat8((int32_t)input[index] + mf_test_weights[index]);
    }
#ifdef MF_LAYER_DUMP
    mf_layer_dump(0, layer0, MF_MODEL_INPUT_BYTES);
#endif
    for (index = 0; index < MF_MODEL_OUTPUT_BYTES; ++index) {
        const int32_t acc = (int32_t)layer0[4 * index] + layer0[4 * index + 1] + layer0[4 * index + 2] +
                            layer0[4 * index + 3];
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        layer1[index] = mf_sat8(mf_round_half_even((float)acc * 0.375f));
#else
        layer1[index] = mf_sat8((acc * 3 + 4) >> 3);
#endif
    }
#ifdef MF_LAYER_DUMP
    mf_layer_dump(1, layer1, MF_MODEL_OUTPUT_BYTES);
#endif
    for (index = 0; index < MF_MODEL_OUTPUT_BYTES; ++index) {
        const int32_t mixed = (int32_t)layer1[(index + 5) % MF_MODEL_OUTPUT_BYTES] >> 1;

        output[index] = mf_sat8((int32_t)layer1[index] - mixed + index);
    }
#ifdef MF_LAYER_DUMP
    mf_layer_dump(2, output, MF_MODEL_OUTPUT_BYTES);
#endif
    return 0;
}
