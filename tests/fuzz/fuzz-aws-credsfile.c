/* libFuzzer target: the shared credentials/config file parser. The first
 * byte picks the file kind and profile; the rest is the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const profiles[] = {"default", "prod", "a b", ""};
    struct aws_profile p = {0};
    char *text;

    if (size < 1)
        return 0;
    text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    (void)aws_profile_parse(text, size - 1, data[0] & 1, profiles[(data[0] >> 1) & 3], &p);
    aws_profile_clear(&p);
    free(text);
    return 0;
}
