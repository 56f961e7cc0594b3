/*
 * Argument-check fuzz harness (tests/engine/test_fuzz_args.py): one kernel call per input line, built with
 * AddressSanitizer and UndefinedBehaviorSanitizer, printing the returned status per line.
 *
 * Line: <kernel> <nulls> <integers...> (the integers of each kernel are listed in its case below). Every buffer is
 * allocated with exactly the bytes its own shape describes (the shapes may disagree with each other: the kernel
 * must refuse that, never read or write past a buffer); a non-positive shape gets a 1-byte buffer. `nulls` is a
 * bit mask: 1 params, 2 input, 4 output, 8 filter/second input, 16 quant arrays. A shape over MAX_BYTES is not run
 * ("skip"). Data bytes come from a fixed xorshift sequence; scales are valid (finite, > 0): this harness probes
 * shapes and parameters, the value ranges are the other engine tests' business.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcuforge.h"

#define MAX_BYTES (1 << 20)
#define MAX_FIELDS 32

static uint32_t rng = 2463534242u;

static int8_t next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (int8_t)(rng & 0xff);
}

/* Bytes of a (h, w, c) shape, -1 when too large to allocate, 1 when a dimension is not positive. */
static int64_t shape_bytes(int64_t h, int64_t w, int64_t c)
{
    if (h <= 0 || w <= 0 || c <= 0) {
        return 1;
    }
    if (h > MAX_BYTES || w > MAX_BYTES || c > MAX_BYTES || h * w > MAX_BYTES || h * w * c > MAX_BYTES) {
        return -1;
    }
    return h * w * c;
}

/* Channels of a packed depthwise filter: c rounded up to a multiple of 4 (a non-positive c as it is). */
static int64_t packed_channels(int64_t c)
{
    return c > 0 ? (c + 3) / 4 * 4 : c;
}

/* Buffers of one call, freed together. */
static void *owned[32];
static int owned_count;

static void *buffer(int64_t bytes, int is_null)
{
    if (is_null) {
        return NULL;
    }
    uint8_t *memory = malloc((size_t)bytes);
    for (int64_t i = 0; i < bytes; i++) {
        memory[i] = (uint8_t)next_byte();
    }
    owned[owned_count++] = memory;
    return memory;
}

static float *scales(int64_t count, int is_null)
{
    if (is_null || count <= 0) {
        return is_null ? NULL : buffer(sizeof(float), 0);
    }
    float *values = buffer(count * (int64_t)sizeof(float), 0);
    for (int64_t i = 0; i < count; i++) {
        values[i] = 0.001f + (float)(i % 7) * 0.01f;
    }
    return values;
}

static int32_t *multipliers(int64_t count, int is_null, int32_t value)
{
    if (is_null || count <= 0) {
        return is_null ? NULL : buffer(sizeof(int32_t), 0);
    }
    int32_t *values = buffer(count * (int64_t)sizeof(int32_t), 0);
    for (int64_t i = 0; i < count; i++) {
        values[i] = value;
    }
    return values;
}

static mf_quant_params quant_for(int64_t channels, int is_null)
{
    mf_quant_params quant;
    quant.scale = scales(channels, is_null);
    quant.multiplier = multipliers(channels, is_null, 1 << 30);
    quant.shift = multipliers(channels, is_null, -3);
    return quant;
}

static mf_requant requant_one(void)
{
    mf_requant requant = {0.25f, 1 << 30, -1};
    return requant;
}

#define NEED(n)                                                                                                      \
    if (count < (n)) {                                                                                               \
        return 100;                                                                                                  \
    }
#define BYTES(name, h, w, c)                                                                                         \
    int64_t name = shape_bytes((h), (w), (c));                                                                       \
    if (name < 0) {                                                                                                  \
        return 101;                                                                                                  \
    }

/* Runs one line; returns the kernel's status, 100 for a malformed line, 101 for "skip". */
static int run(const char *kernel, int nulls, const int64_t *v, int count)
{
    int p_null = nulls & 1, in_null = nulls & 2, out_null = nulls & 4, f_null = nulls & 8, q_null = nulls & 16;
    if (!strcmp(kernel, "conv") || !strcmp(kernel, "conv1x1") || !strcmp(kernel, "dwconv") ||
        !strcmp(kernel, "dwinplace")) {
        /* ih iw ic  kh kw kc  oh ow oc  sh sw dh dw  pt pl pb pr  izp ozp amin amax  [scratch] */
        NEED(21);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_dims filter_dims = {(int32_t)v[3], (int32_t)v[4], (int32_t)v[5]};
        mf_dims out = {(int32_t)v[6], (int32_t)v[7], (int32_t)v[8]};
        mf_conv_params params = {(int32_t)v[17], (int32_t)v[18], {(int32_t)v[9], (int32_t)v[10]},
                                 {(int32_t)v[11], (int32_t)v[12]},
                                 {(int32_t)v[13], (int32_t)v[14], (int32_t)v[15], (int32_t)v[16]},
                                 (int32_t)v[19], (int32_t)v[20]};
        int depthwise = kernel[0] == 'd';
        int64_t out_channels = out.c > 0 ? out.c : 0;
        if (out_channels > MAX_BYTES) {
            return 101;
        }
        BYTES(in_bytes, in.h, in.w, in.c);
        BYTES(out_bytes, out.h, out.w, out.c);
        /* a standard conv's filter is [C_out, K_h, K_w, C_in]; a depthwise one packed: K_h * K_w * C (C rounded up to
         * a multiple of 4) int16 */
        BYTES(f_bytes, depthwise ? 2 : (out.c > 0 ? out.c : 1), filter_dims.h * (int64_t)filter_dims.w,
              depthwise ? packed_channels(filter_dims.c) : filter_dims.c);
        mf_quant_params quant = quant_for(out_channels, q_null);
        int8_t *filter = buffer(f_bytes, f_null);
        int32_t *bias = multipliers(out_channels, 0, 7);
        if (!strcmp(kernel, "dwinplace")) {
            /* in place: one buffer of the larger of the two shapes */
            int8_t *data = buffer(in_bytes > out_bytes ? in_bytes : out_bytes, in_null);
            int32_t scratch_bytes = count > 21 ? (int32_t)v[21] : 0;
            if (scratch_bytes < 0 || scratch_bytes > MAX_BYTES) {
                return mf_depthwise_conv2d_inplace_s8(p_null ? NULL : &params, &quant, &in, data, &filter_dims,
                                                      filter, bias, &out, NULL, scratch_bytes);
            }
            int8_t *scratch = buffer(scratch_bytes > 0 ? scratch_bytes : 1, out_null);
            (void)mf_depthwise_conv2d_inplace_s8_get_buffer_size(p_null ? NULL : &params, &in, &out);
            return mf_depthwise_conv2d_inplace_s8(p_null ? NULL : &params, &quant, &in, data, &filter_dims, filter,
                                                  bias, &out, scratch, scratch_bytes);
        }
        int8_t *input = buffer(in_bytes, in_null);
        int8_t *output = buffer(out_bytes, out_null);
        if (!strcmp(kernel, "conv")) {
            return mf_conv2d_s8(p_null ? NULL : &params, &quant, &in, input, &filter_dims, filter, bias, &out, output);
        }
        if (!strcmp(kernel, "conv1x1")) {
            return mf_conv2d_1x1_s8(p_null ? NULL : &params, &quant, &in, input, &filter_dims, filter, bias, &out,
                                    output);
        }
        return mf_depthwise_conv2d_s8(p_null ? NULL : &params, &quant, &in, input, &filter_dims, filter, bias, &out,
                                      output);
    }
    if (!strcmp(kernel, "mbconv")) {
        /* ih iw ic  c_mid  kh kw  oh ow oc  sh sw dh dw  pt pl pb pr  izp ozp amin amax  expand_stride  scratch */
        NEED(23);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_dims out = {(int32_t)v[6], (int32_t)v[7], (int32_t)v[8]};
        int32_t mid = (int32_t)v[3];
        if (v[3] > MAX_BYTES || v[8] > MAX_BYTES) {
            return 101;
        }
        int64_t mid_count = mid > 0 ? mid : 0, out_count = out.c > 0 ? out.c : 0;
        BYTES(in_bytes, in.h, in.w, in.c);
        BYTES(out_bytes, out.h, out.w, out.c);
        BYTES(expand_bytes, mid > 0 ? mid : 1, 1, in.c);
        BYTES(depthwise_bytes, v[4], 2 * v[5], packed_channels(v[3])); /* packed int16 */
        BYTES(project_bytes, out.c > 0 ? out.c : 1, 1, mid);
        int32_t es = (int32_t)v[21];
        mf_mbconv_params params;
        memset(&params, 0, sizeof params);
        params.expand.params = (mf_conv_params){(int32_t)v[17], 3, {es, es}, {1, 1}, {0, 0, 0, 0}, -128, 127};
        params.expand.quant = quant_for(mid_count, q_null);
        params.expand.filter_dims = (mf_dims){1, 1, in.c};
        params.expand.filter = buffer(expand_bytes, f_null);
        params.expand.bias = multipliers(mid_count, 0, 7);
        params.depthwise.params = (mf_conv_params){3, -2, {(int32_t)v[9], (int32_t)v[10]},
                                                   {(int32_t)v[11], (int32_t)v[12]},
                                                   {(int32_t)v[13], (int32_t)v[14], (int32_t)v[15], (int32_t)v[16]},
                                                   -128, 127};
        params.depthwise.quant = quant_for(mid_count, q_null);
        params.depthwise.filter_dims = (mf_dims){(int32_t)v[4], (int32_t)v[5], mid};
        params.depthwise.filter = buffer(depthwise_bytes, f_null);
        params.depthwise.bias = multipliers(mid_count, 0, -3);
        params.project.params = (mf_conv_params){-2, (int32_t)v[18], {1, 1}, {1, 1}, {0, 0, 0, 0}, (int32_t)v[19],
                                                 (int32_t)v[20]};
        params.project.quant = quant_for(out_count, q_null);
        params.project.filter_dims = (mf_dims){1, 1, mid};
        params.project.filter = buffer(project_bytes, f_null);
        params.project.bias = multipliers(out_count, 0, 5);
        int8_t *input = buffer(in_bytes, in_null);
        int8_t *output = buffer(out_bytes, out_null);
        int32_t scratch_bytes = (int32_t)v[22];
        (void)mf_mbconv_fused_s8_get_buffer_size(p_null ? NULL : &params, &in, &out);
        if (v[22] < 0 || v[22] > MAX_BYTES) {
            return mf_mbconv_fused_s8(p_null ? NULL : &params, &in, input, &out, output, NULL, scratch_bytes);
        }
        int8_t *scratch = buffer(scratch_bytes > 0 ? scratch_bytes : 1, 0);
        return mf_mbconv_fused_s8(p_null ? NULL : &params, &in, input, &out, output, scratch, scratch_bytes);
    }
    if (!strcmp(kernel, "anomaly")) {
        /* size  izp ozp  input_multiplier output_multiplier  acc */
        NEED(6);
        if (v[0] > MAX_BYTES) {
            return 101;
        }
        BYTES(bytes, v[0], 1, 1);
        mf_anomaly_params params = {(int32_t)v[1], (int32_t)v[2], (int32_t)v[3], (int32_t)v[4]};
        int64_t acc = v[5];
        int64_t *acc_pointer = out_null ? NULL : &acc;
        return mf_anomaly_accumulate_s8(p_null ? NULL : &params, (int32_t)v[0], buffer(bytes, in_null),
                                        buffer(bytes, f_null), acc_pointer);
    }
    if (!strcmp(kernel, "fc")) {
        /* ih iw ic  fh fw fc  oh ow oc  izp ozp amin amax */
        NEED(13);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_dims filter_dims = {(int32_t)v[3], (int32_t)v[4], (int32_t)v[5]};
        mf_dims out = {(int32_t)v[6], (int32_t)v[7], (int32_t)v[8]};
        mf_fc_params params = {(int32_t)v[9], (int32_t)v[10], (int32_t)v[11], (int32_t)v[12]};
        if (out.c > MAX_BYTES) {
            return 101;
        }
        BYTES(in_bytes, in.h, in.w, in.c);
        BYTES(f_bytes, filter_dims.h, filter_dims.w, filter_dims.c);
        BYTES(out_bytes, out.h, out.w, out.c);
        mf_quant_params quant = quant_for(out.c > 0 ? out.c : 0, q_null);
        int32_t *bias = multipliers(out.c > 0 ? out.c : 0, 0, -5);
        return mf_fully_connected_s8(p_null ? NULL : &params, &quant, &in, buffer(in_bytes, in_null), &filter_dims,
                                     buffer(f_bytes, f_null), bias, &out, buffer(out_bytes, out_null));
    }
    if (!strcmp(kernel, "add")) {
        /* size  zp1 zp2 ozp  left_shift  amin amax */
        NEED(7);
        mf_add_params params = {(int32_t)v[1], (int32_t)v[2], (int32_t)v[3], 0.5f, 0.25f, 0.75f, (int32_t)v[4],
                                requant_one(), requant_one(), requant_one(), (int32_t)v[5], (int32_t)v[6]};
        BYTES(bytes, v[0], 1, 1);
        return mf_add_s8(p_null ? NULL : &params, (int32_t)v[0], buffer(bytes, in_null), buffer(bytes, f_null),
                         buffer(bytes, out_null));
    }
    if (!strcmp(kernel, "avgpool") || !strcmp(kernel, "maxpool") || !strcmp(kernel, "avgpool_tflm") ||
        !strcmp(kernel, "gavgpool")) {
        /* ih iw ic  oh ow oc  kh kw sh sw  pt pl pb pr  include_pad izp ozp amin amax */
        NEED(19);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_dims out = {(int32_t)v[3], (int32_t)v[4], (int32_t)v[5]};
        mf_pool_params params = {{(int32_t)v[6], (int32_t)v[7]}, {(int32_t)v[8], (int32_t)v[9]},
                                 {(int32_t)v[10], (int32_t)v[11], (int32_t)v[12], (int32_t)v[13]},
                                 (int32_t)v[14], (int32_t)v[15], (int32_t)v[16], 0.5f, 0.25f, requant_one(),
                                 (int32_t)v[17], (int32_t)v[18]};
        BYTES(in_bytes, in.h, in.w, in.c);
        if (!strcmp(kernel, "gavgpool")) {
            BYTES(c_bytes, in.c, 1, 1);
            return mf_global_avgpool_s8(p_null ? NULL : &params, &in, buffer(in_bytes, in_null),
                                        buffer(c_bytes, out_null));
        }
        BYTES(out_bytes, out.h, out.w, out.c);
        int8_t *input = buffer(in_bytes, in_null);
        int8_t *output = buffer(out_bytes, out_null);
        if (!strcmp(kernel, "avgpool")) {
            return mf_avgpool_s8(p_null ? NULL : &params, &in, input, &out, output);
        }
        if (!strcmp(kernel, "avgpool_tflm")) {
            return mf_avgpool_tflm_s8(p_null ? NULL : &params, &in, input, &out, output);
        }
        return mf_maxpool_s8(p_null ? NULL : &params, &in, input, &out, output);
    }
    if (!strcmp(kernel, "softmax") || !strcmp(kernel, "softmax_tflm")) {
        /* h w c  ozp  multiplier shift diff_min */
        NEED(7);
        mf_dims dims = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        BYTES(bytes, dims.h, dims.w, dims.c);
        int8_t *input = buffer(bytes, in_null);
        int8_t *output = buffer(bytes, out_null);
        if (!strcmp(kernel, "softmax")) {
            float *table = scales(256, q_null);
            mf_softmax_params params = {table, 255.0f, (int32_t)v[3]};
            return mf_softmax_s8(p_null ? NULL : &params, &dims, input, output);
        }
        mf_softmax_tflm_params params = {(int32_t)v[4], (int32_t)v[5], (int32_t)v[6]};
        return mf_softmax_tflm_s8(p_null ? NULL : &params, &dims, input, output);
    }
    if (!strcmp(kernel, "argmax")) {
        NEED(1);
        BYTES(bytes, v[0], 1, 1);
        int32_t *index = out_null ? NULL : buffer(sizeof(int32_t), 0);
        return mf_argmax_s8(buffer(bytes, in_null), (int32_t)v[0], index);
    }
    if (!strcmp(kernel, "copy_rows")) {
        /* src_stride dst_stride rows row_bytes */
        NEED(4);
        BYTES(src_bytes, v[2], v[0], 1);
        BYTES(dst_bytes, v[2], v[1], 1);
        return mf_copy_rows_s8(buffer(src_bytes, in_null), (int32_t)v[0], buffer(dst_bytes, out_null), (int32_t)v[1],
                               (int32_t)v[2], (int32_t)v[3]);
    }
    if (!strcmp(kernel, "pad")) {
        /* ih iw ic  oh ow oc  pt pl pb pr  before after value */
        NEED(13);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_dims out = {(int32_t)v[3], (int32_t)v[4], (int32_t)v[5]};
        mf_pad_params params = {{(int32_t)v[6], (int32_t)v[7], (int32_t)v[8], (int32_t)v[9]}, (int32_t)v[10],
                                (int32_t)v[11], (int32_t)v[12]};
        BYTES(in_bytes, in.h, in.w, in.c);
        BYTES(out_bytes, out.h, out.w, out.c);
        return mf_pad_s8(p_null ? NULL : &params, &in, buffer(in_bytes, in_null), &out, buffer(out_bytes, out_null));
    }
    if (!strcmp(kernel, "mean")) {
        /* ih iw ic  reduce_h reduce_w reduce_c  izp ozp multiplier shift */
        NEED(10);
        mf_dims in = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        mf_mean_params params = {(int32_t)v[3], (int32_t)v[4], (int32_t)v[5], (int32_t)v[6], (int32_t)v[7],
                                 (int32_t)v[8], (int32_t)v[9]};
        BYTES(in_bytes, in.h, in.w, in.c);
        BYTES(out_bytes, v[3] ? 1 : in.h, v[4] ? 1 : in.w, v[5] ? 1 : in.c);
        return mf_mean_tflm_s8(p_null ? NULL : &params, &in, buffer(in_bytes, in_null), buffer(out_bytes, out_null));
    }
    if (!strcmp(kernel, "concat")) {
        /* oh ow oc  num_inputs  c0 c1 c2  zp0 zp1 zp2  ozp */
        NEED(11);
        mf_dims out = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2]};
        int32_t num = (int32_t)v[3];
        mf_concat_input inputs[3];
        for (int i = 0; i < 3; i++) {
            BYTES(bytes, out.h, out.w, v[4 + i]);
            inputs[i].data = buffer(bytes, in_null);
            inputs[i].channels = (int32_t)v[4 + i];
            inputs[i].zp = (int32_t)v[7 + i];
            inputs[i].scale = 0.5f;
            inputs[i].requant = requant_one();
        }
        mf_concat_params params = {0.5f, (int32_t)v[10]};
        BYTES(out_bytes, out.h, out.w, out.c);
        if (num > 3) {
            num = 3; /* the harness holds three descriptors */
        }
        return mf_concat_s8(p_null ? NULL : &params, f_null ? NULL : inputs, num, &out, buffer(out_bytes, out_null));
    }
    return 100;
}

int main(void)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char kernel[32];
        int nulls = 0, offset = 0, used = 0;
        int64_t values[MAX_FIELDS];
        int count = 0;
        if (sscanf(line, "%31s %d%n", kernel, &nulls, &offset) != 2) {
            printf("bad\n");
            continue;
        }
        long long value;
        while (count < MAX_FIELDS && sscanf(line + offset, "%lld%n", &value, &used) == 1) {
            values[count++] = (int64_t)value;
            offset += used;
        }
        owned_count = 0;
        int status = run(kernel, nulls, values, count);
        for (int i = 0; i < owned_count; i++) {
            free(owned[i]);
        }
        if (status == 100) {
            printf("bad\n");
        } else if (status == 101) {
            printf("skip\n");
        } else {
            printf("%d\n", status);
        }
        fflush(stdout);
    }
    return 0;
}
