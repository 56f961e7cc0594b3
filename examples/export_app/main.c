/*
 * Example firmware using an mcuforge export (build/<name>/export/<name>/): runs the model over a file of samples
 * and writes the outputs, like the repository's runner, but built against the exported folder alone.
 *
 *   example <inputs> <outputs>
 *
 * <inputs> holds N samples back to back: int8 model inputs (any name), raw uint8 pixels (a name ending in ".u8",
 * quantized by <model>_quantize_u8) or float32 values (".f32", quantized by <model>_quantize_float). <outputs>
 * receives N outputs of <MODEL>_OUTPUT_BYTES. One line on stdout: the sample count and the first sample's class.
 *
 * Compile with -DMODEL=<prefix without the underscore> -DMODEL_UPPER=<the same in upper case> -DMODEL_HEADER=<name>.h
 * (CMakeLists.txt and Makefile do). On Cortex-M under QEMU it uses newlib's semihosting for the files (startup code and linker script
 * are the application's: platform/). Exit codes: 0 ok, 2 usage, 3 file error, 4 bad input size, 5 invoke failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EX_STR(x) #x
#define EX_XSTR(x) EX_STR(x)
#define EX_CAT(a, b) a##b
#define EX_XCAT(a, b) EX_CAT(a, b)
#define API(name) EX_XCAT(MODEL, EX_XCAT(_, name))   /* API(invoke) -> digits_invoke */
#define CONST(name) EX_XCAT(MODEL_UPPER, EX_XCAT(_, name)) /* CONST(OK) -> DIGITS_OK */

#include EX_XSTR(MODEL_HEADER)

enum { MODE_INT8, MODE_U8, MODE_F32 };

static uint8_t raw[CONST(INPUT_BYTES) * sizeof(float)];

static int ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text);
    size_t m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

static void quantize(int mode, int8_t *input)
{
    if (mode == MODE_F32) {
        float values[CONST(INPUT_BYTES)];
        memcpy(values, raw, sizeof(values));
        API(quantize_float)(values, input, (size_t)CONST(INPUT_BYTES));
#if CONST(HAS_U8_INPUT)
    } else if (mode == MODE_U8) {
        API(quantize_u8)(raw, input, (size_t)CONST(INPUT_BYTES));
#endif
    } else {
        memcpy(input, raw, (size_t)CONST(INPUT_BYTES));
    }
}

static int argmax(const int8_t *values, int count)
{
    int best = 0;
    int i;
    for (i = 1; i < count; ++i) {
        if (values[i] > values[best]) {
            best = i;
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    int mode = MODE_INT8;
    size_t sample_bytes = (size_t)CONST(INPUT_BYTES);
    unsigned long samples = 0;
    int first = -1;
    int status = 0;

    if (argc != 3) {
        fprintf(stderr, "example: usage: example <inputs> <outputs>\n");
        return 2;
    }
    if (ends_with(argv[1], ".f32")) {
        mode = MODE_F32;
        sample_bytes *= sizeof(float);
    } else if (ends_with(argv[1], ".u8")) {
#if !CONST(HAS_U8_INPUT)
        fprintf(stderr, "example: this model has no uint8 input helper\n");
        return 2;
#endif
        mode = MODE_U8;
    }
    if (API(init)() != CONST(OK)) {
        fprintf(stderr, "example: init failed\n");
        return 5;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "example: cannot open %s or %s\n", argv[1], argv[2]);
        return 3;
    }
    for (;;) {
        size_t got = fread(raw, 1, sample_bytes, in);
        if (got == 0) {
            break;
        }
        if (got != sample_bytes) {
            fprintf(stderr, "example: sample %lu is short (%lu of %lu bytes)\n", samples, (unsigned long)got,
                    (unsigned long)sample_bytes);
            status = 4;
            break;
        }
        quantize(mode, API(input)());
        if (API(invoke)() != CONST(OK)) {
            fprintf(stderr, "example: invoke failed on sample %lu\n", samples);
            status = 5;
            break;
        }
        if (fwrite(API(output)(), 1, (size_t)CONST(OUTPUT_BYTES), out) != (size_t)CONST(OUTPUT_BYTES)) {
            status = 3;
            break;
        }
        if (samples == 0) {
            first = argmax(API(output)(), CONST(OUTPUT_BYTES));
        }
        ++samples;
    }
    fclose(in);
    if (fclose(out) != 0) {
        status = 3;
    }
#if CONST(HAS_LABELS)
    printf("example: %lu samples, first: class %d (%s), arena %d B\n", samples, first,
           first >= 0 ? API(labels)[first] : "-", CONST(ARENA_BYTES));
#else
    printf("example: %lu samples, first: index %d, arena %d B\n", samples, first, CONST(ARENA_BYTES));
#endif
    return status;
}
