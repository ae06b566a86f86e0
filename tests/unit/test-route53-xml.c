/* route53 plugin: the ChangeBatch body, answer parsing, and the record
 * comparison that decides whether a record is still ours. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "r53.h"

static struct r53_rrset set(const char *name, const char *type, const char *set_id, int64_t weight,
                            int64_t ttl, const char *value)
{
    struct r53_rrset s = {.name = (char *)name,
                          .type = (char *)type,
                          .set_id = (char *)set_id,
                          .weight = weight,
                          .ttl = ttl,
                          .value = (char *)value,
                          .n_values = 1};
    return s;
}

static void test_change_xml_weighted(void **state)
{
    (void)state;
    struct r53_rrset s = set("web.example.com.", "A", "i-0abc", 10, 60, "203.0.113.7");
    size_t len = 0;
    char *x = r53_change_xml("UPSERT", &s, "agentd on i-0abc", &len);
    assert_non_null(x);
    assert_int_equal(len, strlen(x));
    assert_non_null(strstr(x, "<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws"
                              ".com/doc/2013-04-01/\"><ChangeBatch><Comment>agentd on i-0abc"
                              "</Comment><Changes><Change><Action>UPSERT</Action>"));
    assert_non_null(strstr(x, "<ResourceRecordSet><Name>web.example.com.</Name><Type>A</Type>"
                              "<SetIdentifier>i-0abc</SetIdentifier><Weight>10</Weight>"
                              "<TTL>60</TTL><ResourceRecords><ResourceRecord><Value>203.0.113.7"
                              "</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"));
    assert_null(strstr(x, "MultiValueAnswer"));
    free(x);
}

static void test_change_xml_escapes_and_simple(void **state)
{
    (void)state;
    struct r53_rrset s = set("t.example.com.", "TXT", NULL, -1, 300, "\"a<b & 'c'\"");
    size_t len;
    char *x = r53_change_xml("DELETE", &s, NULL, &len);
    assert_non_null(x);
    assert_non_null(strstr(x, "<Value>&quot;a&lt;b &amp; &apos;c&apos;&quot;</Value>"));
    assert_null(strstr(x, "<Comment>"));
    assert_null(strstr(x, "<Weight>"));
    assert_null(strstr(x, "<SetIdentifier>"));
    assert_non_null(strstr(x, "<Action>DELETE</Action>"));
    free(x);
}

static void test_parse_change_info(void **state)
{
    (void)state;
    static const char xml[] =
        "<?xml version=\"1.0\"?><ChangeResourceRecordSetsResponse xmlns=\"https://route53."
        "amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id>"
        "<Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00.000Z</SubmittedAt>"
        "</ChangeInfo></ChangeResourceRecordSetsResponse>";
    struct r53_reply r;
    assert_int_equal(r53_reply_parse(xml, strlen(xml), &r), 0);
    assert_string_equal(r.change_id, "C2682N5HXP0BZ4");
    assert_string_equal(r.change_status, "PENDING");
    assert_null(r.rrset.name);
    r53_reply_free(&r);
}

static void test_parse_list_first_set_only(void **state)
{
    (void)state;
    static const char xml[] =
        "<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
        "<ResourceRecordSets><ResourceRecordSet><Name>\\052.Example.com.</Name><Type>A</Type>"
        "<SetIdentifier>i-1</SetIdentifier><Weight>5</Weight><TTL>60</TTL><ResourceRecords>"
        "<ResourceRecord><Value>192.0.2.1</Value></ResourceRecord><ResourceRecord><Value>"
        "192.0.2.2</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
        "<ResourceRecordSet><Name>z.example.com.</Name><Type>TXT</Type><TTL>9</TTL>"
        "<ResourceRecords><ResourceRecord><Value>\"x\"</Value></ResourceRecord>"
        "</ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false"
        "</IsTruncated><MaxItems>2</MaxItems></ListResourceRecordSetsResponse>";
    struct r53_reply r;
    assert_int_equal(r53_reply_parse(xml, strlen(xml), &r), 0);
    assert_string_equal(r.rrset.name, "*.example.com.");
    assert_string_equal(r.rrset.type, "A");
    assert_string_equal(r.rrset.set_id, "i-1");
    assert_int_equal(r.rrset.weight, 5);
    assert_int_equal(r.rrset.ttl, 60);
    assert_string_equal(r.rrset.value, "192.0.2.1");
    assert_int_equal(r.rrset.n_values, 2);
    assert_false(r.rrset.multivalue);
    r53_reply_free(&r);
}

static void test_parse_zones(void **state)
{
    (void)state;
    static const char xml[] =
        "<ListHostedZonesByNameResponse><HostedZones><HostedZone><Id>/hostedzone/Z1AAA</Id>"
        "<Name>example.com.</Name><CallerReference>r</CallerReference><Config><PrivateZone>false"
        "</PrivateZone></Config></HostedZone><HostedZone><Id>/hostedzone/Z2BBB</Id><Name>"
        "example.net.</Name></HostedZone><HostedZone><Id>/hostedzone/Z3</Id><Name>x.</Name>"
        "</HostedZone></HostedZones><DNSName>example.com</DNSName><IsTruncated>true</IsTruncated>"
        "<MaxItems>2</MaxItems></ListHostedZonesByNameResponse>";
    struct r53_reply r;
    assert_int_equal(r53_reply_parse(xml, strlen(xml), &r), 0);
    assert_string_equal(r.zone_ids[0], "Z1AAA");
    assert_string_equal(r.zone_names[0], "example.com.");
    assert_string_equal(r.zone_ids[1], "Z2BBB");
    assert_string_equal(r.zone_names[1], "example.net.");
    r53_reply_free(&r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char icb[] =
        "<?xml version=\"1.0\"?><InvalidChangeBatch xmlns=\"https://route53.amazonaws.com/doc/"
        "2013-04-01/\"><Messages><Message>Tried to delete resource record set [name='a.example."
        "com.', type='A'] but the values provided do not match the current values</Message>"
        "</Messages><RequestId>r-1</RequestId></InvalidChangeBatch>";
    struct r53_reply r;
    assert_int_equal(r53_reply_parse(icb, strlen(icb), &r), 0);
    assert_true(r.invalid_change_batch);
    assert_non_null(strstr(r.error_message, "do not match"));
    r53_reply_free(&r);

    static const char err[] = "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchHostedZone"
                              "</Code><Message>No hosted zone found with ID: ZX</Message></Error>"
                              "</ErrorResponse>";
    assert_int_equal(r53_reply_parse(err, strlen(err), &r), 0);
    assert_false(r.invalid_change_batch);
    assert_string_equal(r.error_message, "No hosted zone found with ID: ZX");
    r53_reply_free(&r);

    assert_int_equal(r53_reply_parse("<a><b></a>", 10, &r), -EBADMSG);
    assert_null(r.change_id);
}

static void test_rrset_compare(void **state)
{
    (void)state;
    struct r53_rrset a = set("www.example.com.", "A", "i-1", 10, 60, "192.0.2.1");
    struct r53_rrset b = set("WWW.example.com", "A", "i-1", 10, 60, "192.0.2.1");
    assert_true(r53_rrset_same_key(&a, &b));
    assert_true(r53_rrset_equal(&a, &b));
    b.ttl = 300;
    assert_true(r53_rrset_same_key(&a, &b));
    assert_false(r53_rrset_equal(&a, &b));
    b.ttl = 60;
    b.value = "192.0.2.9";
    assert_false(r53_rrset_equal(&a, &b));
    b.value = "192.0.2.1";
    b.weight = 11;
    assert_false(r53_rrset_equal(&a, &b));
    b.weight = 10;
    b.n_values = 2;
    assert_false(r53_rrset_equal(&a, &b));
    b.n_values = 1;
    b.set_id = "i-2";
    assert_false(r53_rrset_same_key(&a, &b));
    b.set_id = NULL;
    assert_false(r53_rrset_same_key(&a, &b));
    struct r53_rrset c1 = set("s.example.com.", "CNAME", NULL, -1, 60, "lb.example.net.");
    struct r53_rrset c2 = set("s.example.com.", "CNAME", NULL, -1, 60, "LB.example.net");
    assert_true(r53_rrset_equal(&c1, &c2));
    c2.type = "TXT";
    assert_false(r53_rrset_same_key(&c1, &c2));

    struct r53_rrset copy;
    assert_int_equal(r53_rrset_copy(&a, &copy), 0);
    assert_true(r53_rrset_equal(&a, &copy));
    assert_ptr_not_equal(copy.name, a.name);
    r53_rrset_free(&copy);
    assert_null(copy.name);
    assert_int_equal(copy.weight, -1);
}

static void test_names_and_txt(void **state)
{
    (void)state;
    char *n = r53_name_normalize("\\052.Dev.Example.COM");
    assert_string_equal(n, "*.dev.example.com.");
    free(n);
    n = r53_name_normalize("a.example.com.");
    assert_string_equal(n, "a.example.com.");
    free(n);
    char *t = r53_txt_quote("v=spf1 \"x\" \\");
    assert_string_equal(t, "\"v=spf1 \\\"x\\\" \\\\\"");
    free(t);
    t = r53_txt_quote("\"already\"");
    assert_string_equal(t, "\"already\"");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_xml_weighted),
        cmocka_unit_test(test_change_xml_escapes_and_simple),
        cmocka_unit_test(test_parse_change_info),
        cmocka_unit_test(test_parse_list_first_set_only),
        cmocka_unit_test(test_parse_zones),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_rrset_compare),
        cmocka_unit_test(test_names_and_txt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
