/* ml_alerts.h — thresholds and alerts, evaluated by the collector at every snapshot.
 *
 * Rules (configuration in struct ml_config, formats in docs/format.md):
 *   threshold — levels warning / critical / emergency: RSS against an absolute size, or the cgroup's
 *               usage against a percent of its limit; an alert when a level is entered (re-armed when
 *               the value falls below 95 % of the level);
 *   growth    — the heap or RSS trend is linear or exponential with confidence >= 50 and grows faster
 *               than MEMLENS_GROWTH_ALERT, by at least 1 MiB over the window (re-armed when that
 *               stops being true);
 *   site      — one call site holds more than MEMLENS_SITE_MAX live bytes (re-armed below 95 %).
 * Each rule has a token bucket of MEMLENS_ALERT_LIMIT alerts per hour; alerts over it are counted and
 * reported with the next alert of the rule (`suppressed_before`) and in `alert_summary` at the end.
 * Every alert is written to the stream and flushed at once, and the same JSON line goes to
 * MEMLENS_ALERT_FD when set. Static state, protected by the collector's flush lock. */
#ifndef ML_ALERTS_H
#define ML_ALERTS_H
#include <stdbool.h>
#include <stdint.h>

#define ML_ALERT_SITES 5

struct ml_alert_input {
    uint64_t t_ns;                          /* CLOCK_REALTIME of the snapshot */
    uint64_t rss;
    bool cgroup_known;                      /* cgroup usage could be read */
    uint64_t cgroup_current, cgroup_limit;  /* limit 0: unlimited */
    const uint32_t *top_sites;              /* the largest sites, live bytes descending */
    const uint64_t *top_live;
    unsigned top_count;                     /* <= ML_ALERT_SITES */
};

void ml_alerts_reset(void);
/* Evaluates every rule after a snapshot (and its trends) were written. */
void ml_alerts_evaluate(const struct ml_alert_input *input);
/* At the end of a stream: an `alert_summary` record when any rule ever fired. */
void ml_alerts_write_summary(uint64_t t_ns);
#endif
