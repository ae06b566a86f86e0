/* libFuzzer target: Query/S3 XML error bodies and the 200-with-error test. */
#include <stddef.h>
#include <stdint.h>

#include "aws-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aws_error e;

    (void)aws_error_parse_xml((const char *)data, size, &e);
    (void)aws_error_xml_is_error((const char *)data, size);
    return 0;
}
