/*
 * mf_runner: runs the generated model over a file of input samples (docs/engine_abi.md, "Runner").
 *
 *   mf_runner <inputs.bin> <outputs.bin> [layer_dir]
 *
 * inputs.bin holds N samples of MF_MODEL_INPUT_BYTES (MF_MODEL_RAW_INPUT_BYTES of int16 PCM for a model with an
 * audio front end; N = file size / sample bytes); outputs.bin receives N outputs
 * of MF_MODEL_OUTPUT_BYTES. Built with MF_LAYER_DUMP and given layer_dir, every layer's output is appended to
 * layer_dir/layer_%03d.bin, one block per sample (each file is truncated at its first write of the run).
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
 * mf_model_invoke_pcm (front end, then network); the outputs are the network's. Built also with MF_MODEL_STREAM
 * (a pipeline model, mcuforge/codegen/chain.py), each clip goes through the streaming entry points instead
 * (mf_model_stream_reset with its first samples, one mf_model_stream_push per frame, mf_model_stream_invoke): the
 * same outputs, by the streaming front end.
 *
 * Anomaly models (model.h defines MF_MODEL_ANOMALY) also run whole clips:
 *
 *   mf_runner score <clips.bin> <scores.bin>
 *
 * clips.bin holds N clips of MF_ANOMALY_CLIP_BYTES int8 features; scores.bin receives per clip 9 bytes: the score's
 * int64 accumulator, little-endian, then the decision (1 = anomalous). The instruction count region is one clip.
 * With the audio front end on the device (model.h defines MF_ANOMALY_PCM_SAMPLES):
 *
 *   mf_runner score_pcm <clips.bin> <scores.bin> [layer_dir]
 *
 * takes clips of MF_ANOMALY_PCM_SAMPLES raw int16 PCM values (little-endian) through mf_model_anomaly_score_pcm
 * (front end, then every window); the same 9-byte records. Built with MF_LAYER_DUMP and given layer_dir, the clip's
 * features go to layer_<MF_MODEL_NUM_LAYERS>.bin (one block per clip) and every window's layers to the others
 * (one block per window).
 *
 * Exit codes: 0 success, 2 usage (also: the outputs file is the inputs file, which "wb" would truncate before it is
 * read), 3 a file cannot be opened, read or written (also: the inputs are a directory or another non-regular file),
 * 4 the input size is not a multiple of the sample size, 5 mf_model_invoke failed. Every failure prints one line on stderr starting "mf_runner:".
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#define MF_HAVE_STAT 1  /* the host build: POSIX stat; the Cortex-M build (newlib semihosting) has no inode numbers */
#include <sys/stat.h>
#endif

#include "model.h"

#ifdef MF_MODEL_PCM /* a front end chained by codegen.frontend.chain (model_pcm.h defines MF_MODEL_PCM_SAMPLES) */
#include "model_pcm.h"
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
static int mf_layer_dump_failed;
/* layers written so far in this run: a layer's file is truncated at its first write, appended to afterwards (a
 * layer may be written several times per sample: every window of an anomaly clip) */
static unsigned char mf_layer_written[MF_MODEL_NUM_LAYERS + 1];
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

/* Appends one layer's output to layer_dir/layer_%03d.bin (truncated at the layer's first write of the run). */
static void mf_layer_write(int layer_index, const int8_t *data, size_t bytes)
{
    char path[1024];
    FILE *file;
    int length;
    int first;

    if (mf_layer_dir == NULL || mf_layer_dump_failed) {
        return;
    }
    if (layer_index < 0 || layer_index > MF_MODEL_NUM_LAYERS) {
        fprintf(stderr, "mf_runner: layer index %d out of range [0, %d]\n", layer_index, MF_MODEL_NUM_LAYERS);
        mf_layer_dump_failed = 1;
        return;
    }
    first = !mf_layer_written[layer_index];
    mf_layer_written[layer_index] = 1u;
    length = snprintf(path, sizeof(path), "%s/layer_%03d.bin", mf_layer_dir, layer_index);
    if (length < 0 || (size_t)length >= sizeof(path)) {
        fprintf(stderr, "mf_runner: layer dump path too long: %s/layer_%03d.bin\n", mf_layer_dir, layer_index);
        mf_layer_dump_failed = 1;
        return;
    }
    file = fopen(path, first ? "wb" : "ab");
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

/*
 * A model with an audio front end (model.h defines MF_MODEL_PCM_SAMPLES) takes raw int16 PCM clips, little endian,
 * and runs mf_model_invoke_pcm; any other model takes its int8 input tensor and runs mf_model_invoke.
 */
#ifdef MF_MODEL_PCM_SAMPLES
#define MF_SAMPLE_BYTES (2ul * (unsigned long)MF_MODEL_PCM_SAMPLES)
static int16_t mf_pcm[MF_MODEL_PCM_SAMPLES];
#define MF_SAMPLE_BUFFER ((void *)mf_pcm)
#if defined(MF_MODEL_STREAM) /* the streaming entry points: reset, one push per hop of the clip, invoke */
#if MF_MODEL_STREAM_KEEP_SAMPLES + MF_MODEL_STREAM_FRAMES * MF_MODEL_STREAM_HOP_SAMPLES > MF_MODEL_PCM_SAMPLES
#error "MF_MODEL_STREAM: the clip is shorter than the history plus one hop per frame"
#endif
static int mf_stream_clip(const int16_t *pcm)
{
    int status = mf_model_stream_reset(pcm);
    int k;

    for (k = 0; k < MF_MODEL_STREAM_FRAMES && status == 0; k++) {
        status = mf_model_stream_push(pcm + MF_MODEL_STREAM_KEEP_SAMPLES + k * MF_MODEL_STREAM_HOP_SAMPLES);
    }
    return status != 0 ? status : mf_model_stream_invoke();
}
#define MF_INVOKE() mf_stream_clip(mf_pcm)
#else
#define MF_INVOKE() mf_model_invoke_pcm(mf_pcm)
#endif
#else
#define MF_SAMPLE_BYTES ((unsigned long)MF_MODEL_INPUT_BYTES)
#define MF_SAMPLE_BUFFER ((void *)mf_model_input())
#define MF_INVOKE() mf_model_invoke()
#endif

/* Refuse what fopen/ftell would misread: the inputs not a regular file (a directory reads as LONG_MAX bytes), and
 * the outputs being the inputs under any name (same device and inode on the host, the same string elsewhere). */
static int mf_check_paths(const char *inputs_path, const char *outputs_path)
{
#ifdef MF_HAVE_STAT
    struct stat in_stat;
    struct stat out_stat;

    if (stat(inputs_path, &in_stat) != 0) {
        fprintf(stderr, "mf_runner: cannot open inputs file %s\n", inputs_path);
        return MF_EXIT_IO;
    }
    if (!S_ISREG(in_stat.st_mode)) {
        fprintf(stderr, "mf_runner: inputs %s is %s, not a regular file\n", inputs_path,
                S_ISDIR(in_stat.st_mode) ? "a directory" : "a device, pipe or socket");
        return MF_EXIT_IO;
    }
    if (stat(outputs_path, &out_stat) == 0 && out_stat.st_dev == in_stat.st_dev && out_stat.st_ino == in_stat.st_ino) {
        fprintf(stderr, "mf_runner: outputs file %s is the inputs file %s: it would be truncated before it is read\n",
                outputs_path, inputs_path);
        return MF_EXIT_USAGE;
    }
#else
    if (strcmp(inputs_path, outputs_path) == 0) {
        fprintf(stderr, "mf_runner: outputs file %s is the inputs file: it would be truncated before it is read\n",
                outputs_path);
        return MF_EXIT_USAGE;
    }
#endif
    return MF_EXIT_OK;
}

static int mf_run(const char *inputs_path, const char *outputs_path)
{
    FILE *inputs;
    FILE *outputs;
    long input_size;
    unsigned long sample_count;
    unsigned long sample;
    int status;

    status = mf_check_paths(inputs_path, outputs_path);
    if (status != MF_EXIT_OK) {
        return status;
    }
    inputs = fopen(inputs_path, "rb");
    if (inputs == NULL) {
        fprintf(stderr, "mf_runner: cannot open inputs file %s\n", inputs_path);
        return MF_EXIT_IO;
    }
    input_size = mf_file_size(inputs);
    if (input_size < 0 || input_size == LONG_MAX) {  /* LONG_MAX: what ftell says for a directory */
        fprintf(stderr, "mf_runner: cannot get the size of inputs file %s\n", inputs_path);
        fclose(inputs);
        return MF_EXIT_IO;
    }
    if (input_size == 0 || (unsigned long)input_size % MF_SAMPLE_BYTES != 0) {
        fprintf(stderr, "mf_runner: inputs file %s has %ld bytes, not a positive multiple of the sample size %lu\n",
                inputs_path, input_size, MF_SAMPLE_BYTES);
        fclose(inputs);
        return MF_EXIT_INPUT_SIZE;
    }
    sample_count = (unsigned long)input_size / MF_SAMPLE_BYTES;

    outputs = fopen(outputs_path, "wb");
    if (outputs == NULL) {
        fprintf(stderr, "mf_runner: cannot open outputs file %s for writing\n", outputs_path);
        fclose(inputs);
        return MF_EXIT_IO;
    }

    for (sample = 0; sample < sample_count; ++sample) {
        if (!mf_read_exact(inputs, MF_SAMPLE_BUFFER, (size_t)MF_SAMPLE_BYTES)) {
            fprintf(stderr, "mf_runner: cannot read sample %lu from %s\n", sample, inputs_path);
            fclose(inputs);
            fclose(outputs);
            return MF_EXIT_IO;
        }
#ifdef MF_STACK_PAINT
        mf_stack_paint();
#endif
        mf_bench_start();
        status = MF_INVOKE();
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

#ifdef MF_MODEL_ANOMALY
static int8_t mf_clip_features[MF_ANOMALY_CLIP_BYTES];

static int mf_score_features(int64_t *acc, int *anomalous)
{
    return mf_model_anomaly_score(mf_clip_features, acc, anomalous);
}

#ifdef MF_ANOMALY_PCM_SAMPLES
static int16_t mf_clip_pcm[MF_ANOMALY_PCM_SAMPLES];

static int mf_score_pcm(int64_t *acc, int *anomalous)
{
    return mf_model_anomaly_score_pcm(mf_clip_pcm, acc, anomalous);
}
#endif

/* Scores every clip of clips_path (clip_bytes each, read into `clip`, scored by `score`) into scores_path. */
static int mf_score(const char *clips_path, const char *scores_path, void *clip, unsigned long clip_bytes,
                    int (*score)(int64_t *, int *))
{
    unsigned char record[9];
    FILE *clips;
    FILE *scores;
    long clips_size;
    unsigned long clip_count;
    unsigned long index;
    int64_t acc;
    uint64_t bits;
    int anomalous;
    int status;
    int byte;

    status = mf_check_paths(clips_path, scores_path);
    if (status != MF_EXIT_OK) {
        return status;
    }
    clips = fopen(clips_path, "rb");
    if (clips == NULL) {
        fprintf(stderr, "mf_runner: cannot open clips file %s\n", clips_path);
        return MF_EXIT_IO;
    }
    clips_size = mf_file_size(clips);
    if (clips_size <= 0 || clips_size == LONG_MAX || (unsigned long)clips_size % clip_bytes != 0) {
        fprintf(stderr, "mf_runner: clips file %s has %ld bytes, not a positive multiple of the clip size %lu\n",
                clips_path, clips_size, clip_bytes);
        fclose(clips);
        return MF_EXIT_INPUT_SIZE;
    }
    clip_count = (unsigned long)clips_size / clip_bytes;
    scores = fopen(scores_path, "wb");
    if (scores == NULL) {
        fprintf(stderr, "mf_runner: cannot open scores file %s for writing\n", scores_path);
        fclose(clips);
        return MF_EXIT_IO;
    }
    for (index = 0; index < clip_count; ++index) {
        if (!mf_read_exact(clips, clip, (size_t)clip_bytes)) {
            fprintf(stderr, "mf_runner: cannot read clip %lu from %s\n", index, clips_path);
            fclose(clips);
            fclose(scores);
            return MF_EXIT_IO;
        }
#ifdef MF_STACK_PAINT
        mf_stack_paint();
#endif
        mf_bench_start();
        status = score(&acc, &anomalous);
        mf_bench_stop();
#ifdef MF_STACK_PAINT
        mf_stack_note_inference();
#endif
        if (status != 0) {
            fprintf(stderr, "mf_runner: the anomaly score failed with status %d on clip %lu\n", status, index);
            fclose(clips);
            fclose(scores);
            return MF_EXIT_INVOKE;
        }
#ifdef MF_LAYER_DUMP
        if (mf_layer_dump_failed) {
            fclose(clips);
            fclose(scores);
            return MF_EXIT_IO;
        }
#endif
        bits = (uint64_t)acc;
        for (byte = 0; byte < 8; ++byte) {
            record[byte] = (unsigned char)((bits >> (8 * byte)) & 0xFFu);
        }
        record[8] = (unsigned char)(anomalous != 0);
        if (fwrite(record, 1, sizeof(record), scores) != sizeof(record)) {
            fprintf(stderr, "mf_runner: cannot write the score of clip %lu to %s\n", index, scores_path);
            fclose(clips);
            fclose(scores);
            return MF_EXIT_IO;
        }
    }
    fclose(clips);
    if (fclose(scores) != 0) {
        fprintf(stderr, "mf_runner: cannot write scores file %s\n", scores_path);
        return MF_EXIT_IO;
    }
    return MF_EXIT_OK;
}
#endif

int main(int argc, char **argv)
{
#ifdef MF_MODEL_ANOMALY
    if (argc == 4 && strcmp(argv[1], "score") == 0) {
        return mf_score(argv[2], argv[3], mf_clip_features, (unsigned long)MF_ANOMALY_CLIP_BYTES, mf_score_features);
    }
#ifdef MF_ANOMALY_PCM_SAMPLES
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "score_pcm") == 0) {
#ifdef MF_LAYER_DUMP
        mf_layer_dir = argc == 5 ? argv[4] : NULL;
#else
        if (argc == 5) {
            fprintf(stderr, "mf_runner: layer_dir %s given but this runner was built without MF_LAYER_DUMP\n",
                    argv[4]);
            return MF_EXIT_USAGE;
        }
#endif
        return mf_score(argv[2], argv[3], mf_clip_pcm, 2ul * (unsigned long)MF_ANOMALY_PCM_SAMPLES, mf_score_pcm);
    }
#endif
#endif
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
