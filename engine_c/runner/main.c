/*
 * mf_runner: runs the generated model over a file of input samples (docs/engine_abi.md, "Runner").
 *
 *   mf_runner <inputs.bin> <outputs.bin> [layer_dir]
 *
 * inputs.bin holds N samples of MF_MODEL_INPUT_BYTES (N = file size / input bytes); outputs.bin receives N outputs
 * of MF_MODEL_OUTPUT_BYTES. Built with MF_LAYER_DUMP and given layer_dir, every layer's output is appended to
 * layer_dir/layer_%03d.bin, one block per sample (the files are truncated at the first sample).
 *
 * The same source runs on the host and on QEMU with newlib semihosting (files are host files, opened relative to
 * QEMU's working directory). Files are streamed one sample at a time, so their size is not limited by RAM.
 *
 * Built with MF_LAYER_DUMP, mf_layer_dump ends by calling mf_layer_dump_done: the two are the QEMU instruction-count
 * plugin's mark and resume, which split every inference into per-layer counts that leave out the dump's I/O.
 *
 * Built with MF_STACK_PAINT (Cortex-M, engine_c/platform/startup.c), every inference runs on a freshly painted stack
 * and its high-water mark is noted, outside the benchmark markers so that instruction counts are unchanged.
 *
 * Built with MF_MODEL_PCM (a model generated with the audio front end chained: model_pcm.h), the samples of
 * inputs.bin are clips of MF_MODEL_PCM_SAMPLES raw int16 PCM values (little-endian) and each runs through
 * mf_model_invoke_pcm (front end, then network); the outputs are the network's.
 *
 * Exit codes: 0 success, 2 usage, 3 a file cannot be opened, read or written, 4 the input size is not a multiple
 * of the sample size, 5 mf_model_invoke failed. Every failure prints one line on stderr starting "mf_runner:".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#ifdef MF_MODEL_PCM
#include "model_pcm.h"
static int16_t mf_pcm_input[MF_MODEL_PCM_SAMPLES];
#define MF_RUNNER_SAMPLE_BYTES ((size_t)MF_MODEL_PCM_SAMPLES * sizeof(int16_t))
#define MF_RUNNER_INPUT() ((void *)mf_pcm_input)
#define MF_RUNNER_INVOKE() mf_model_invoke_pcm(mf_pcm_input)
#else
#define MF_RUNNER_SAMPLE_BYTES ((size_t)MF_MODEL_INPUT_BYTES)
#define MF_RUNNER_INPUT() ((void *)mf_model_input())
#define MF_RUNNER_INVOKE() mf_model_invoke()
#endif

#define MF_EXIT_OK 0
#define MF_EXIT_USAGE 2
#define MF_EXIT_IO 3
#define MF_EXIT_INPUT_SIZE 4
#define MF_EXIT_INVOKE 5

#if defined(__GNUC__) && !defined(__clang__)
#define MF_BENCH_MARKER __attribute__((noinline, noipa, used))
#elif defined(__GNUC__)
#define MF_BENCH_MARKER __attribute__((noinline, used))
#else
#define MF_BENCH_MARKER
#endif

/*
 * Benchmark markers. The QEMU instruction-count plugin (engine_c/tools/icount_plugin.c) counts the instructions
 * executed from the first instruction of mf_bench_start to the first instruction of mf_bench_stop. The bodies
 * differ so that the compiler cannot fold the two functions into one (identical code folding).
 */
volatile uint32_t mf_bench_active;
volatile uint32_t mf_bench_regions;

MF_BENCH_MARKER void mf_bench_start(void)
{
    mf_bench_active = 1u;
}

MF_BENCH_MARKER void mf_bench_stop(void)
{
    mf_bench_active = 0u;
    mf_bench_regions = mf_bench_regions + 1u;
}

#ifdef MF_STACK_PAINT
void mf_stack_paint(void);
void mf_stack_note_inference(void);
#endif

#ifdef MF_LAYER_DUMP
static const char *mf_layer_dir;
static unsigned long mf_sample_index;
static int mf_layer_dump_failed;
volatile uint32_t mf_layer_dumps;

/*
 * Per-layer instruction counts: the icount plugin ends a layer's segment at the first instruction of mf_layer_dump
 * and starts the next one at the first instruction of mf_layer_dump_done, which mf_layer_dump calls last on every
 * path, so that the dump's file I/O is counted in no layer.
 */
MF_BENCH_MARKER void mf_layer_dump_done(void)
{
    mf_layer_dumps = mf_layer_dumps + 1u;
}

/* Appends one layer's output of the current sample to layer_dir/layer_%03d.bin (truncated at sample 0). */
static void mf_layer_write(int layer_index, const int8_t *data, size_t bytes)
{
    char path[1024];
    FILE *file;
    int length;

    if (mf_layer_dir == NULL || mf_layer_dump_failed) {
        return;
    }
    length = snprintf(path, sizeof(path), "%s/layer_%03d.bin", mf_layer_dir, layer_index);
    if (length < 0 || (size_t)length >= sizeof(path)) {
        fprintf(stderr, "mf_runner: layer dump path too long: %s/layer_%03d.bin\n", mf_layer_dir, layer_index);
        mf_layer_dump_failed = 1;
        return;
    }
    file = fopen(path, mf_sample_index == 0 ? "wb" : "ab");
    if (file == NULL) {
        fprintf(stderr, "mf_runner: cannot open layer dump file %s (does the directory exist?)\n", path);
        mf_layer_dump_failed = 1;
        return;
    }
    if (bytes > 0 && fwrite(data, 1, bytes, file) != bytes) {
        fprintf(stderr, "mf_runner: cannot write %lu bytes to %s\n", (unsigned long)bytes, path);
        mf_layer_dump_failed = 1;
    }
    if (fclose(file) != 0) {
        fprintf(stderr, "mf_runner: cannot close %s\n", path);
        mf_layer_dump_failed = 1;
    }
}

void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes)
{
    mf_layer_write(layer_index, data, bytes);
    mf_layer_dump_done();
}
#endif

/* Size of an open file in bytes, or -1. Leaves the position at the start. */
static long mf_file_size(FILE *file)
{
    long size;

    if (fseek(file, 0L, SEEK_END) != 0) {
        return -1;
    }
    size = ftell(file);
    if (fseek(file, 0L, SEEK_SET) != 0) {
        return -1;
    }
    return size;
}

static int mf_read_exact(FILE *file, void *buffer, size_t bytes)
{
    return fread(buffer, 1, bytes, file) == bytes;
}

static int mf_run(const char *inputs_path, const char *outputs_path)
{
    FILE *inputs;
    FILE *outputs;
    long input_size;
    unsigned long sample_count;
    unsigned long sample;
    int status;

    inputs = fopen(inputs_path, "rb");
    if (inputs == NULL) {
        fprintf(stderr, "mf_runner: cannot open inputs file %s\n", inputs_path);
        return MF_EXIT_IO;
    }
    input_size = mf_file_size(inputs);
    if (input_size < 0) {
        fprintf(stderr, "mf_runner: cannot get the size of inputs file %s\n", inputs_path);
        fclose(inputs);
        return MF_EXIT_IO;
    }
    if (input_size == 0 || (unsigned long)input_size % (unsigned long)MF_RUNNER_SAMPLE_BYTES != 0) {
        fprintf(stderr, "mf_runner: inputs file %s has %ld bytes, not a positive multiple of the sample size %lu\n",
                inputs_path, input_size, (unsigned long)MF_RUNNER_SAMPLE_BYTES);
        fclose(inputs);
        return MF_EXIT_INPUT_SIZE;
    }
    sample_count = (unsigned long)input_size / (unsigned long)MF_RUNNER_SAMPLE_BYTES;

    outputs = fopen(outputs_path, "wb");
    if (outputs == NULL) {
        fprintf(stderr, "mf_runner: cannot open outputs file %s for writing\n", outputs_path);
        fclose(inputs);
        return MF_EXIT_IO;
    }

    for (sample = 0; sample < sample_count; ++sample) {
        if (!mf_read_exact(inputs, MF_RUNNER_INPUT(), MF_RUNNER_SAMPLE_BYTES)) {
            fprintf(stderr, "mf_runner: cannot read sample %lu from %s\n", sample, inputs_path);
            fclose(inputs);
            fclose(outputs);
            return MF_EXIT_IO;
        }
#ifdef MF_LAYER_DUMP
        mf_sample_index = sample;
#endif
#ifdef MF_STACK_PAINT
        mf_stack_paint();
#endif
        mf_bench_start();
        status = MF_RUNNER_INVOKE();
        mf_bench_stop();
#ifdef MF_STACK_PAINT
        mf_stack_note_inference();
#endif
        if (status != 0) {
            fprintf(stderr, "mf_runner: mf_model_invoke failed with status %d on sample %lu\n", status, sample);
            fclose(inputs);
            fclose(outputs);
            return MF_EXIT_INVOKE;
        }
#ifdef MF_LAYER_DUMP
        if (mf_layer_dump_failed) {
            fclose(inputs);
            fclose(outputs);
            return MF_EXIT_IO;
        }
#endif
        if (fwrite(mf_model_output(), 1, (size_t)MF_MODEL_OUTPUT_BYTES, outputs) != (size_t)MF_MODEL_OUTPUT_BYTES) {
            fprintf(stderr, "mf_runner: cannot write output of sample %lu to %s\n", sample, outputs_path);
            fclose(inputs);
            fclose(outputs);
            return MF_EXIT_IO;
        }
    }
    fclose(inputs);
    if (fclose(outputs) != 0) {
        fprintf(stderr, "mf_runner: cannot write outputs file %s\n", outputs_path);
        return MF_EXIT_IO;
    }
    return MF_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "mf_runner: usage: mf_runner <inputs.bin> <outputs.bin> [layer_dir] (got %d arguments)\n",
                argc - 1);
        return MF_EXIT_USAGE;
    }
#ifdef MF_LAYER_DUMP
    mf_layer_dir = argc == 4 ? argv[3] : NULL;
#else
    if (argc == 4) {
        fprintf(stderr, "mf_runner: layer_dir %s given but this runner was built without MF_LAYER_DUMP\n", argv[3]);
        return MF_EXIT_USAGE;
    }
#endif
    return mf_run(argv[1], argv[2]);
}
