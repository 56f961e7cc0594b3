/* Strided copy of a window of rows (patch-based inference: a patch's box of a tensor in, its tile out). */
#include "../mf_internal.h"

#include <string.h>

mf_status mf_copy_rows_s8(const int8_t *src, int32_t src_stride, int8_t *dst, int32_t dst_stride, int32_t rows,
                          int32_t row_bytes)
{
    int32_t row;
    if (src == NULL || dst == NULL || rows < 0 || row_bytes < 0 || src_stride < row_bytes ||
        dst_stride < row_bytes) {
        return MF_ARG_ERROR;
    }
    for (row = 0; row < rows; row++) {
        memcpy(dst + (size_t)row * (size_t)dst_stride, src + (size_t)row * (size_t)src_stride, (size_t)row_bytes);
    }
    return MF_OK;
}
