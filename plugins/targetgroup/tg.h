/* targetgroup plugin: internal interfaces shared by its files. */
#ifndef TARGETGROUP_TG_H
#define TARGETGROUP_TG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "agentd/plugin.h"

enum tg_target_type { TG_TYPE_INSTANCE, TG_TYPE_IP };
enum tg_join { TG_JOIN_HEALTHY, TG_JOIN_START };

struct tg_group_conf {
    char *name;
    char *arn;
    int64_t port;
    int target_type; /* enum tg_target_type */
    char *availability_zone;
};

struct tg_conf {
    struct agentd_list groups; /* of struct tg_group_conf */
    int join_when;             /* enum tg_join */
    struct agentd_list checks; /* of char *: checks that must pass; empty: overall */
    uint64_t drain_timeout_ms; /* 0: the group's deregistration delay */
    uint64_t poll_interval_ms;
    uint64_t drain_poll_ms;
    char *endpoint;
    char *region;
    bool health_check;
};

enum tg_state {
    TG_WAITING,      /* for health, metadata or the group's ARN */
    TG_REGISTERING,  /* RegisterTargets sent */
    TG_REGISTERED,   /* in the group; polled at poll_interval */
    TG_DRAINING,     /* DeregisterTargets sent or being retried; polled until gone */
    TG_DEREGISTERED, /* out of the group (drained or timed out) */
    TG_ERROR,        /* the last request failed; retried on a backoff */
};

const char *tg_state_name(enum tg_state s);

struct tg;

struct tg_group {
    struct tg *tg;
    const struct tg_group_conf *conf;
    char *arn; /* resolved or configured */
    enum tg_state state;
    uint64_t since_ms;                              /* wall clock of the last state change */
    char *elb_state, *elb_reason, *elb_description; /* last TargetHealth seen */
    char *last_error;
    int64_t dereg_delay_s; /* -1 until read */
    bool delay_asked;
    struct agentd_aws_call *call; /* at most one request in flight */
    const char *call_action;
    uv_timer_t timer;  /* poll or retry */
    bool timer_due;    /* the timer fired: poll or retry now */
    unsigned failures; /* consecutive, for the backoff */
    bool ever_registered;
    uint64_t drain_started_ms;  /* monotonic */
    uint64_t drain_deadline_ms; /* monotonic; 0 until draining */
    struct agentd_metric *m_registered;
};

struct tg {
    struct agentd_plugin_ctx *ctx;
    const struct tg_conf *conf;
    struct tg_group *groups;
    size_t n_groups;
    bool draining;
    char drain_reason[160];
    int64_t interruption_at; /* unix seconds of a spot interruption; 0 none */
    bool stopping;
    bool lifecycle_drain;           /* drained for Standby/Warmed:*: InService undrains */
    bool left;                      /* a stop sequence drained it for good */
    agentd_stop_done_fn leave_done; /* prepare(leave) waits for every group */
    agentd_stop_done_fn stop_done;
    unsigned open_handles; /* timers not yet closed */
    uv_timer_t kick;       /* runs tg_step_all once after start */
    struct agentd_health_check *check;
    struct agentd_metric *m_requests_ok, *m_requests_failed;
};

/* tg-group.c */
void tg_group_init(struct tg *tg, struct tg_group *g, const struct tg_group_conf *conf);
/* Decides and starts the next request for a group, if any is due. */
void tg_group_step(struct tg_group *g);
void tg_group_free(struct tg_group *g);
void tg_group_close(struct tg_group *g, uv_close_cb cb);
/* Whether the instance may join: join_when and the configured checks. */
bool tg_health_ok(struct tg *tg);
/* Called by groups when they change state: stop completion, health check. */
void tg_changed(struct tg *tg);
uint64_t tg_now_ms(void);

/* --- Query protocol helpers (tg-query.c) --------------------------------- */

/* A bounded growable form body: "Action=X&Version=2015-12-01&...". */
struct tg_form {
    char *buf;
    size_t len, cap;
    bool failed;
};

void tg_form_init(struct tg_form *f, const char *action);
/* Appends &key=value with value percent-encoded (RFC 3986 unreserved kept). */
void tg_form_add(struct tg_form *f, const char *key, const char *value);
/* Adds Targets.member.1.Id/Port[/AvailabilityZone]. */
void tg_form_add_target(struct tg_form *f, const char *id, int64_t port, const char *az);
void tg_form_free(struct tg_form *f);

/* What the plugin reads out of ELBv2's XML answers. */
struct tg_reply {
    char *arn;             /* DescribeTargetGroups: first TargetGroupArn */
    char *state;           /* DescribeTargetHealth: first member's TargetHealth/State */
    char *reason;          /* ... Reason */
    char *description;     /* ... Description */
    bool has_target;       /* DescribeTargetHealth listed at least one target */
    int64_t dereg_delay_s; /* DescribeTargetGroupAttributes: -1 if absent */
};

/* tg-view.c: logs and publishes a change of the TargetHealth the load
 * balancer reports for g (NULL state: no target listed); call before
 * g->elb_* are replaced. */
void tg_view_update(struct tg_group *g, const char *state, const char *reason,
                    const char *description);

/* tg-doctor.c: the "doctor" verb (ud: struct tg); cancel its calls at stop,
 * free its results at destroy. */
int tg_doctor_verb(struct agentd_plugin_ctx *ctx, const json_t *args, json_t **ret, void *ud);
void tg_doctor_cancel(void);
void tg_doctor_free(void);

/* Parses an ELBv2 XML answer into r (zeroed first). Returns 0 or -EBADMSG. */
int tg_reply_parse(const char *xml, size_t len, struct tg_reply *r);
void tg_reply_free(struct tg_reply *r);

/* Parses "2017-09-18T08:22:00Z" into unix seconds; -EINVAL if malformed. */
int tg_parse_time(const char *s, int64_t *ret);

#endif
