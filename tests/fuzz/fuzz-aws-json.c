/* libFuzzer target: JSON 1.1 error bodies (and the x-amzn-ErrorType header
 * when the input holds a NUL: header before it, body after). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    struct aws_error e;
    char *copy = malloc(size + 1);

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    if (nul) {
        size_t hl = (size_t)(nul - data);
        (void)aws_error_parse_json(copy + hl + 1, size - hl - 1, copy, &e);
    } else
        (void)aws_error_parse_json(copy, size, NULL, &e);
    free(copy);
    return 0;
}
