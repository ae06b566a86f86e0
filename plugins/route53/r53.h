/* route53 plugin: internal interfaces shared by its files. */
#ifndef ROUTE53_R53_H
#define ROUTE53_R53_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "agentd/plugin.h"

enum r53_type { R53_A, R53_AAAA, R53_CNAME, R53_TXT };
enum r53_when { R53_WHEN_HEALTHY, R53_WHEN_START };
enum r53_on_stop { R53_STOP_DELETE, R53_STOP_KEEP };

struct r53_record_conf {
    char *zone_id; /* "Z123..." (a "/hostedzone/" prefix is dropped) */
    char *zone;    /* or the zone's name, resolved once */
    char *name;    /* template */
    int type;      /* enum r53_type */
    char *value;   /* template */
    int64_t ttl;
    char *set_identifier; /* template; default {instance_id} with weight/multivalue */
    int64_t weight;       /* -1: no weighted routing */
    bool multivalue;
    int when;    /* enum r53_when */
    int on_stop; /* enum r53_on_stop */
};

struct r53_conf {
    struct agentd_list records; /* of struct r53_record_conf */
    struct agentd_list checks;  /* of char *: checks that must pass; empty: overall */
    uint64_t recheck_ms;        /* re-read the record this often (jittered) */
    uint64_t sync_timeout_ms;   /* longest wait for INSYNC after a change */
    char *endpoint;
    bool health_check;
};

/* One resource record set with a single value: what the plugin writes, and
 * what it reads back. */
struct r53_rrset {
    char *name;     /* fully qualified, lower case, trailing dot */
    char *type;     /* "A", "AAAA", "CNAME", "TXT" */
    char *set_id;   /* NULL: simple routing */
    int64_t weight; /* -1: none */
    bool multivalue;
    int64_t ttl; /* -1: none (alias records) */
    char *value; /* the first value */
    size_t n_values;
};

void r53_rrset_free(struct r53_rrset *s);
/* Deep copy; returns 0 or -ENOMEM. */
int r53_rrset_copy(const struct r53_rrset *src, struct r53_rrset *ret);
/* Whether a and b name the same record set (name, type, set identifier). */
bool r53_rrset_same_key(const struct r53_rrset *a, const struct r53_rrset *b);
/* Whether a and b are equal in every field Route 53 compares for a DELETE. */
bool r53_rrset_equal(const struct r53_rrset *a, const struct r53_rrset *b);

/* Normalizes a DNS name as Route 53 lists it: lower case, a trailing dot,
 * and the octal escape \052 for '*' undone. New string or NULL. */
char *r53_name_normalize(const char *name);
/* A TXT value quoted for Route 53 unless already quoted. New string or NULL. */
char *r53_txt_quote(const char *v);

/* --- XML out and in (r53-xml.c) ------------------------------------------- */

/* The body of a ChangeResourceRecordSets request with one change (action
 * "UPSERT", "DELETE" or "CREATE"). New string (length in *ret_len) or NULL. */
char *r53_change_xml(const char *action, const struct r53_rrset *s, const char *comment,
                     size_t *ret_len);

/* What the plugin reads out of Route 53's answers. */
struct r53_reply {
    char *change_id;        /* ChangeInfo/Id without "/change/" */
    char *change_status;    /* ChangeInfo/Status: PENDING, INSYNC */
    struct r53_rrset rrset; /* ListResourceRecordSets: the first set (name NULL: none) */
    char *zone_ids[2];      /* ListHostedZonesByName: the first two zones' ids ... */
    char *zone_names[2];    /* ... and names */
    char *error_message;    /* InvalidChangeBatch/Messages/Message or Error/Message */
    bool invalid_change_batch;
};

/* Parses a Route 53 XML answer into r (zeroed first). Returns 0, -EBADMSG or
 * -ENOMEM. */
int r53_reply_parse(const char *xml, size_t len, struct r53_reply *r);
void r53_reply_free(struct r53_reply *r);

/* --- the plugin (route53.c) and one record's life (r53-record.c) ---------- */

enum r53_state {
    R53_WAITING,  /* for health, metadata or the zone id */
    R53_WRITING,  /* UPSERT sent */
    R53_SYNCING,  /* accepted; GetChange until INSYNC */
    R53_ACTIVE,   /* in sync; re-checked at recheck_interval */
    R53_CONFLICT, /* someone else changed the record; left alone */
    R53_LEAVING,  /* checking and deleting */
    R53_REMOVED,  /* deleted (or left alone, or kept) after leaving */
    R53_ERROR,    /* the last request failed; retried on a backoff */
};

const char *r53_state_name(enum r53_state s);

struct r53;

struct r53_record {
    struct r53 *p;
    const struct r53_record_conf *conf;
    size_t index;
    char *zone_id;            /* configured or resolved */
    struct r53_rrset want;    /* the set from the templates now (name NULL: unknown) */
    struct r53_rrset written; /* the set last written by us (name NULL: none); set
                               * when an UPSERT is sent, as it may apply unanswered */
    struct r53_rrset before;  /* written before that UPSERT: back if it is refused */
    enum r53_state state;
    uint64_t since_ms; /* wall clock of the last state change */
    char *change_id;
    char *change_status;
    uint64_t sync_started_ms; /* monotonic */
    uint64_t synced_ms;       /* wall clock of the last INSYNC */
    uint64_t last_check_ms;   /* wall clock of the last re-check */
    char *last_error;
    char *leave_result; /* "deleted", "already gone", "changed by someone else", "kept" */
    struct agentd_aws_call *call;
    const char *call_op;
    uv_timer_t timer;
    bool timer_due;
    unsigned failures;
    unsigned sync_polls;
    struct agentd_metric *m_active;
};

struct r53 {
    struct agentd_plugin_ctx *ctx;
    const struct r53_conf *conf;
    struct r53_record *records;
    size_t n_records;
    bool leaving;
    char leave_reason[160];
    uint64_t leave_deadline_ms; /* monotonic; 0: none */
    bool stopping;
    agentd_stop_done_fn stop_done;
    unsigned open_handles;
    uv_timer_t kick;
    struct agentd_health_check *check;
    struct agentd_metric *m_requests_ok, *m_requests_failed, *m_changes;
};

void r53_record_init(struct r53 *p, struct r53_record *rec, const struct r53_record_conf *conf,
                     size_t index);
/* Decides and starts the next request for a record, if any is due. */
void r53_record_step(struct r53_record *rec);
/* Begins leaving: cancels what is in flight and steps. */
void r53_record_leave(struct r53_record *rec);
/* Back to joining after an undo of leaving (lifecycle InService). */
void r53_record_rejoin(struct r53_record *rec);
void r53_record_close(struct r53_record *rec, uv_close_cb cb);
void r53_record_free(struct r53_record *rec);
/* Whether the instance may publish: the record's `when` and the checks. */
bool r53_health_ok(struct r53 *p, const struct r53_record_conf *rc);
/* Called when a record changes state: health check, stop completion. */
void r53_changed(struct r53 *p);
uint64_t r53_now_ms(void);
uint64_t r53_wall_ms(void);

/* The retry delay after `failures` consecutive failures (>= 1). Kept in one
 * place so the AWS core's shared backoff policy can replace it. `leaving`:
 * a deletion is never given up while there is time; `permanent`: an error a
 * retry will not fix, retried only on a slow backoff. */
uint64_t r53_backoff_ms(unsigned failures, bool permanent, bool leaving);
/* The re-check delay: the interval with +-20% jitter. */
uint64_t r53_jitter_ms(uint64_t interval_ms);

#endif
