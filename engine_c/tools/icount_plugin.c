/*
 * QEMU TCG plugin: exact count of the guest instructions executed between two marker functions, optionally split
 * into segments (one per layer) by two more markers.
 *
 *   qemu-system-arm ... -plugin icount_plugin.so,start=0x1b4,stop=0x1c0[,mark=0x2a0,resume=0x2f8],out=icount.json
 *
 * start / stop: addresses of the runner's mf_bench_start / mf_bench_stop (from arm-none-eabi-nm; the Thumb bit is
 * ignored). out: file for the result (JSON); without it the result goes to QEMU's log (shown with -d plugin).
 * mark / resume (both or neither): addresses of the runner's mf_layer_dump (called after every layer) and
 * mf_layer_dump_done (called at the end of mf_layer_dump).
 *
 * Every translated instruction gets an inline "add 1" on a 64-bit counter (no helper call, so cheap), and the two
 * marker instructions get a callback that snapshots it. A region is [first instruction of mf_bench_start, first
 * instruction of mf_bench_stop): it includes the call into the model, the model and its return, and is the same
 * for every run of the same ELF and input, whatever QEMU's translation-block boundaries are. Counting per
 * instruction rather than per translation block keeps the count exact when a block is left early (exceptions,
 * semihosting calls).
 *
 * Segments: inside a region, the instructions from the region's start or the last resume to a mark form one
 * segment ([resume, mark), like a region); [mark, resume) -- the layer dump's own work and I/O -- is not in any
 * segment, and [last resume, stop) is the region's tail (the return from the model). Marks and resumes outside a
 * region are ignored; a second mark without a resume in between ends no segment (counted in unmatched_marks).
 *
 * Result: {"regions": K, "region_instructions": [n_1, ..., n_K], "region_total": sum, "total_instructions": all
 * instructions executed by the guest, ...}; with mark/resume also "mark_instructions": every segment of every
 * region in order (flat), "region_marks": the number of segments per region (they sum to the flat list's length)
 * and "region_tails": the tail of every region.
 *
 * Plugin API version 1 (QEMU 5.x .. 8.1, here Debian's QEMU 7.2). Debian ships no qemu-plugin.h, so the few types
 * and functions used are declared below, copied in meaning from QEMU 7.2's include/qemu/qemu-plugin.h. The
 * functions are resolved from the qemu-system-arm executable when QEMU loads this shared object.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the subset of QEMU 7.2's qemu-plugin.h (API version 1) used here ---------------------------------------- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT extern int qemu_plugin_version;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* ---- the plugin ------------------------------------------------------------------------------------------------ */
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t icount_all;       /* every executed guest instruction (inline add) */
static uint64_t icount_at_start;  /* icount_all when the current region started */
static bool icount_in_region;
static uint64_t icount_start_addr;
static uint64_t icount_stop_addr;
static bool icount_segmented;      /* mark= and resume= given */
static uint64_t icount_mark_addr;
static uint64_t icount_resume_addr;
static uint64_t icount_at_resume;  /* icount_all when the current segment started (region start or last resume) */
static bool icount_in_segment;
static unsigned long icount_unmatched_marks;
static const char *icount_out_path;
/* A growable array of counts. */
typedef struct {
    uint64_t *values;
    size_t count;
    size_t capacity;
} icount_list;

static icount_list icount_regions;
static icount_list icount_region_marks;
static icount_list icount_region_tails;
static icount_list icount_marks;
static uint64_t icount_marks_in_region;
static bool icount_out_of_memory;
static unsigned long icount_unmatched_stops;

static void icount_append(icount_list *list, uint64_t value)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 1024 : 2 * list->capacity;
        uint64_t *grown = realloc(list->values, capacity * sizeof(*grown));

        if (grown == NULL) {
            icount_out_of_memory = true;
            return;
        }
        list->values = grown;
        list->capacity = capacity;
    }
    list->values[list->count++] = value;
}

static void icount_on_start(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    icount_at_start = icount_all;
    icount_in_region = true;
    icount_at_resume = icount_all;
    icount_in_segment = true;
    icount_marks_in_region = 0;
}

static void icount_on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (!icount_in_region) {
        return;
    }
    if (!icount_in_segment) {
        icount_unmatched_marks++;
        return;
    }
    icount_in_segment = false;
    icount_append(&icount_marks, icount_all - icount_at_resume);
    icount_marks_in_region++;
}

static void icount_on_resume(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (!icount_in_region) {
        return;
    }
    icount_at_resume = icount_all;
    icount_in_segment = true;
}

static void icount_on_stop(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (!icount_in_region) {
        icount_unmatched_stops++;
        return;
    }
    icount_in_region = false;
    icount_append(&icount_regions, icount_all - icount_at_start);
    if (icount_segmented) {
        icount_append(&icount_region_marks, icount_marks_in_region);
        /* a region that stops inside a dump (mark without resume) has no tail */
        icount_append(&icount_region_tails, icount_in_segment ? icount_all - icount_at_resume : 0);
    }
}

static void icount_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t insn_count = qemu_plugin_tb_n_insns(tb);
    size_t index;

    (void)id;
    for (index = 0; index < insn_count; ++index) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, index);
        uint64_t address = qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1;

        /* Callbacks are registered before the inline add, so the snapshot excludes the marker's own add. */
        if (address == icount_start_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, icount_on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (address == icount_stop_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, icount_on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (icount_segmented && address == icount_mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, icount_on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (icount_segmented && address == icount_resume_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, icount_on_resume, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &icount_all, 1);
    }
}

static void icount_write_list(FILE *stream, const char *key, const icount_list *list)
{
    size_t index;

    fprintf(stream, ", \"%s\": [", key);
    for (index = 0; index < list->count; ++index) {
        fprintf(stream, "%s%" PRIu64, index == 0 ? "" : ", ", list->values[index]);
    }
    fprintf(stream, "]");
}

static void icount_write(FILE *stream)
{
    uint64_t region_total = 0;
    size_t index;

    for (index = 0; index < icount_regions.count; ++index) {
        region_total += icount_regions.values[index];
    }
    fprintf(stream, "{\"regions\": %zu", icount_regions.count);
    icount_write_list(stream, "region_instructions", &icount_regions);
    if (icount_segmented) {
        icount_write_list(stream, "mark_instructions", &icount_marks);
        icount_write_list(stream, "region_marks", &icount_region_marks);
        icount_write_list(stream, "region_tails", &icount_region_tails);
        fprintf(stream, ", \"unmatched_marks\": %lu", icount_unmatched_marks);
    }
    fprintf(stream,
            ", \"region_total\": %" PRIu64 ", \"total_instructions\": %" PRIu64
            ", \"unmatched_stops\": %lu, \"unfinished_region\": %s, \"out_of_memory\": %s}\n",
            region_total, icount_all, icount_unmatched_stops, icount_in_region ? "true" : "false",
            icount_out_of_memory ? "true" : "false");
}

static void icount_free(icount_list *list)
{
    free(list->values);
    list->values = NULL;
    list->count = 0;
    list->capacity = 0;
}

static void icount_on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    if (icount_out_path != NULL) {
        FILE *stream = fopen(icount_out_path, "w");

        if (stream == NULL) {
            fprintf(stderr, "icount_plugin: cannot write %s: %s\n", icount_out_path, strerror(errno));
        } else {
            icount_write(stream);
            fclose(stream);
        }
    } else {
        char *text = NULL;
        size_t size = 0;
        FILE *stream = open_memstream(&text, &size);

        if (stream != NULL) {
            icount_write(stream);
            fclose(stream);
            qemu_plugin_outs(text);
            free(text);
        }
    }
    icount_free(&icount_regions);
    icount_free(&icount_region_marks);
    icount_free(&icount_region_tails);
    icount_free(&icount_marks);
}

static bool icount_parse_address(const char *text, uint64_t *address)
{
    char *end = NULL;
    unsigned long long value;

    errno = 0;
    value = strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0') {
        return false;
    }
    *address = (uint64_t)value & ~(uint64_t)1;
    return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    bool have_start = false;
    bool have_stop = false;
    bool have_mark = false;
    bool have_resume = false;
    int index;

    (void)info;
    for (index = 0; index < argc; ++index) {
        const char *argument = argv[index];

        if (strncmp(argument, "start=", 6) == 0) {
            have_start = icount_parse_address(argument + 6, &icount_start_addr);
            if (!have_start) {
                fprintf(stderr, "icount_plugin: bad address in '%s'\n", argument);
                return -1;
            }
        } else if (strncmp(argument, "stop=", 5) == 0) {
            have_stop = icount_parse_address(argument + 5, &icount_stop_addr);
            if (!have_stop) {
                fprintf(stderr, "icount_plugin: bad address in '%s'\n", argument);
                return -1;
            }
        } else if (strncmp(argument, "mark=", 5) == 0) {
            have_mark = icount_parse_address(argument + 5, &icount_mark_addr);
            if (!have_mark) {
                fprintf(stderr, "icount_plugin: bad address in '%s'\n", argument);
                return -1;
            }
        } else if (strncmp(argument, "resume=", 7) == 0) {
            have_resume = icount_parse_address(argument + 7, &icount_resume_addr);
            if (!have_resume) {
                fprintf(stderr, "icount_plugin: bad address in '%s'\n", argument);
                return -1;
            }
        } else if (strncmp(argument, "out=", 4) == 0) {
            icount_out_path = argument + 4;
        } else {
            fprintf(stderr,
                    "icount_plugin: unknown argument '%s' (expected start=ADDR, stop=ADDR, mark=ADDR, resume=ADDR, "
                    "out=FILE)\n",
                    argument);
            return -1;
        }
    }
    if (!have_start || !have_stop) {
        fprintf(stderr, "icount_plugin: start=ADDR and stop=ADDR are required\n");
        return -1;
    }
    if (have_mark != have_resume) {
        fprintf(stderr, "icount_plugin: mark=ADDR and resume=ADDR go together (one of them is missing)\n");
        return -1;
    }
    icount_segmented = have_mark;
    if (icount_start_addr == icount_stop_addr ||
        (icount_segmented && (icount_mark_addr == icount_resume_addr || icount_mark_addr == icount_start_addr ||
                              icount_mark_addr == icount_stop_addr || icount_resume_addr == icount_start_addr ||
                              icount_resume_addr == icount_stop_addr))) {
        fprintf(stderr, "icount_plugin: start, stop, mark and resume must be different addresses\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, icount_on_translate);
    qemu_plugin_register_atexit_cb(id, icount_on_exit, NULL);
    return 0;
}
