/*
 * Cortex-M startup for the mcuforge runner under QEMU (newlib semihosting, linked with --specs=rdimon.specs
 * -nostartfiles and one of the linker scripts beside this file).
 *
 * Reset_Handler: enables the FPU (and MVE) when the code is built for one, copies .data, clears .bss, opens the
 * semihosting standard streams, reads the command line from the host and calls exit(main(argc, argv)).
 *
 * Command line: QEMU passes `-semihosting-config enable=on,target=native,arg=A,arg=B,...` to the guest as the
 * string "A B ..." through the semihosting call SYS_GET_CMDLINE. newlib's rdimon-crt0 would do the same, but we
 * link with -nostartfiles (our own vector table and reset handler), so the call is made here. QEMU joins the
 * arguments with single spaces and does no quoting: an argument cannot contain a space.
 *
 * Stack painting (the measured stack, docs/schedule.md "Budgets"): before main, every word of the reserved stack
 * below the reset handler's frame, [__stack_limit__, sp), is filled with MF_STACK_PATTERN. A word that no longer
 * holds it was written by a stack frame, so the lowest such word is the high-water mark: the stack used is
 * __stack_top__ minus its address. The runner (runner/main.c, built with MF_STACK_PAINT) repaints before each
 * inference and notes the mark after it (mf_stack_paint, mf_stack_note_inference), which also separates the
 * inference's own depth from newlib's file I/O. After main returns, one line on the semihosting console reports
 *     mf_stack: used <bytes> B, inference <bytes> B, reserved <bytes> B
 * (inference 0 when no inference ran). A stack that reached __stack_limit__ is reported as "overflow" instead of
 * a size. Painting sees only what was written: a local buffer reserved but left unwritten below the last written
 * word is not counted (-fstack-usage frames bound that part statically), nor a lowest word that happens to hold
 * the pattern value. An inference shallower than the painting call reads as that call's depth (the words between
 * the caller's sp and mf_stack_paint's are not repainted): the inference figure's floor, a few bytes.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;
extern uint32_t __stack_top__;
extern uint32_t __stack_limit__;

extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(int argc, char **argv);

void Reset_Handler(void);
void mf_fault_entry(void);
void mf_fault_report(const uint32_t *frame);
void _init(void);
void _fini(void);
void mf_stack_paint(void);
void mf_stack_note_inference(void);

#define MF_SYS_WRITE0 0x04
#define MF_SYS_GET_CMDLINE 0x15
#define MF_SYS_EXIT 0x18
#define MF_ADP_STOPPED_RUN_TIME_ERROR 0x20023

#define MF_MAX_ARGS 16
#define MF_CMDLINE_BYTES 2048

static char mf_cmdline[MF_CMDLINE_BYTES];
static char *mf_argv[MF_MAX_ARGS + 1];
static char mf_default_argv0[] = "mf_runner";

#define MF_STACK_PATTERN 0xC5AC5AC5u
#define MF_STACK_PATTERN_TEXT "0xC5AC5AC5" /* the same, for the assembler */

/* Lowest stack word found overwritten over the whole run, and during inferences; 0 while none was found. */
static uintptr_t mf_stack_lowest;
static uintptr_t mf_stack_lowest_inference;
static uintptr_t mf_stack_painted_below; /* the sp of the last paint: words from there up were not painted */

static int mf_semihost(int operation, void *argument)
{
    register int r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Splits the semihosting command line on spaces into mf_argv; argv[0] is "mf_runner" when there is none. */
static int mf_read_command_line(void)
{
    struct {
        char *buffer;
        int length;
    } block = {mf_cmdline, MF_CMDLINE_BYTES - 1};
    int argc = 0;
    char *cursor = mf_cmdline;

    if (mf_semihost(MF_SYS_GET_CMDLINE, &block) != 0 || block.length < 0) {
        block.length = 0;
    }
    mf_cmdline[block.length] = '\0';
    while (*cursor != '\0' && argc < MF_MAX_ARGS) {
        while (*cursor == ' ') {
            *cursor++ = '\0';
        }
        if (*cursor == '\0') {
            break;
        }
        mf_argv[argc++] = cursor;
        while (*cursor != '\0' && *cursor != ' ') {
            cursor++;
        }
    }
    if (argc == 0) {
        mf_argv[argc++] = mf_default_argv0;
    }
    mf_argv[argc] = 0;
    return argc;
}

/* The address of the lowest word of [__stack_limit__, the last paint's sp) that no longer holds the pattern, or
 * that sp when every painted word still holds it. */
static uintptr_t mf_stack_scan(void)
{
    const uint32_t *word = &__stack_limit__;
    const uint32_t *end = (const uint32_t *)mf_stack_painted_below;

    while (word < end && *word == MF_STACK_PATTERN) {
        word++;
    }
    return (uintptr_t)word;
}

static void mf_stack_keep_lowest(uintptr_t *lowest, uintptr_t address)
{
    if (*lowest == 0u || address < *lowest) {
        *lowest = address;
    }
}

/* Fills [__stack_limit__, sp) with the pattern and returns that sp. Naked, so it has no frame: every word below the
 * sp it reads is free, whatever the caller's frame holds. Thumb-1 instructions only (Cortex-M0+). */
__attribute__((naked, noinline)) static uintptr_t mf_stack_fill(void)
{
    __asm__ volatile(
        "ldr r0, =__stack_limit__\n\t"
        "ldr r2, =" MF_STACK_PATTERN_TEXT "\n\t"
        "mov r1, sp\n"
        "1:\n\t"
        "cmp r0, r1\n\t"
        "bhs 2f\n\t"
        "str r2, [r0]\n\t"
        "adds r0, r0, #4\n\t"
        "b 1b\n"
        "2:\n\t"
        "mov r0, r1\n\t"
        "bx lr\n\t"
        ".ltorg");
}

/* Notes the mark since the last paint (if any), then paints the free stack below the caller. */
void mf_stack_paint(void)
{
    if (mf_stack_painted_below != 0u) {
        mf_stack_keep_lowest(&mf_stack_lowest, mf_stack_scan());
    }
    mf_stack_painted_below = mf_stack_fill();
}

/* After an inference painted for: its high-water mark counts for the inference and for the whole run. */
void mf_stack_note_inference(void)
{
    uintptr_t address = mf_stack_scan();

    mf_stack_keep_lowest(&mf_stack_lowest_inference, address);
    mf_stack_keep_lowest(&mf_stack_lowest, address);
}

static void mf_write_string(const char *text);
static void mf_write_decimal(uint32_t value);

static void mf_stack_report(void)
{
    const uintptr_t top = (uintptr_t)&__stack_top__;

    mf_stack_keep_lowest(&mf_stack_lowest, mf_stack_scan());
    mf_write_string("mf_stack: used ");
    if (mf_stack_lowest <= (uintptr_t)&__stack_limit__) {
        mf_write_string("overflow");
    } else {
        mf_write_decimal((uint32_t)(top - mf_stack_lowest));
        mf_write_string(" B");
    }
    mf_write_string(", inference ");
    if (mf_stack_lowest_inference != 0u && mf_stack_lowest_inference <= (uintptr_t)&__stack_limit__) {
        mf_write_string("overflow");
    } else {
        mf_write_decimal(mf_stack_lowest_inference == 0u ? 0u : (uint32_t)(top - mf_stack_lowest_inference));
        mf_write_string(" B");
    }
    mf_write_string(", reserved ");
    mf_write_decimal((uint32_t)(top - (uintptr_t)&__stack_limit__));
    mf_write_string(" B\n");
}

void Reset_Handler(void)
{
    uint32_t *source;
    uint32_t *destination;
    int argc;
    int status;

#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU, and MVE on the M55) before any FP/vector instruction runs. */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    source = &__data_load__;
    for (destination = &__data_start__; destination < &__data_end__;) {
        *destination++ = *source++;
    }
    for (destination = &__bss_start__; destination < &__bss_end__;) {
        *destination++ = 0u;
    }
    mf_stack_paint();
    initialise_monitor_handles();
    __libc_init_array();
    argc = mf_read_command_line();
    status = main(argc, mf_argv);
    mf_stack_report();
    exit(status);
}

static void mf_write_string(const char *text)
{
    mf_semihost(MF_SYS_WRITE0, (void *)text);
}

static void mf_write_decimal(uint32_t value)
{
    char text[11];
    int index = (int)sizeof(text) - 1;

    text[index] = '\0';
    do {
        text[--index] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    mf_write_string(&text[index]);
}

static void mf_write_hex(const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    char text[20];
    int index = 0;
    int shift;

    mf_write_string(label);
    text[index++] = '0';
    text[index++] = 'x';
    for (shift = 28; shift >= 0; shift -= 4) {
        text[index++] = digits[(value >> shift) & 0xFu];
    }
    text[index] = '\0';
    mf_write_string(text);
}

/* Called from mf_fault_entry with the exception frame (r0-r3, r12, lr, pc, xpsr) on the main stack. */
__attribute__((used)) void mf_fault_report(const uint32_t *frame) /* called from the asm below only */
{
    uint32_t ipsr;

    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    mf_write_hex("mf_runner: CPU fault, exception ", ipsr & 0x1FFu);
    mf_write_hex(" pc=", frame[6]);
    mf_write_hex(" lr=", frame[5]);
#if __ARM_ARCH_ISA_THUMB >= 2
    mf_write_hex(" cfsr=", *(volatile uint32_t *)0xE000ED28u);
    mf_write_hex(" hfsr=", *(volatile uint32_t *)0xE000ED2Cu);
#endif
    mf_write_string("\n");
    /* On 32-bit Arm, QEMU ends with exit code 1 for any reason other than ApplicationExit. */
    mf_semihost(MF_SYS_EXIT, (void *)MF_ADP_STOPPED_RUN_TIME_ERROR);
    for (;;) {
    }
}

__attribute__((naked)) void mf_fault_entry(void)
{
    /* Thumb-1 compatible (Cortex-M0+): only the main stack is used, so the frame is at MSP. */
    __asm__ volatile(
        "mrs r0, msp\n\t"
        "ldr r1, =mf_fault_report\n\t"
        "bx r1\n\t"
        ".ltorg");
}

/* newlib's __libc_init_array / __libc_fini_array call these; with -nostartfiles there is no crti.o. `used`: with
 * -flto only newlib (not LTO code) refers to them, and the link-time optimizer would drop them. */
__attribute__((used)) void _init(void)
{
}

__attribute__((used)) void _fini(void)
{
}

typedef void (*mf_vector_t)(void);

/* 16 system exceptions + 32 external interrupts, every handler but reset reports a fault. */
__attribute__((section(".vectors"), used)) const mf_vector_t mf_vector_table[16 + 32] = {
    (mf_vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry, mf_fault_entry,
    mf_fault_entry, mf_fault_entry,
};
