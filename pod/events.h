/* pod/events: the lifecycle events of containers and pod sandboxes
 * (created, started, stopped, deleted), published where the state
 * changes and delivered to subscribers (GetContainerEvents) in the order
 * they happened.  Publishing never blocks and never waits for a
 * subscriber: events go to a bounded queue that one delivery thread
 * drains; when the queue is full the oldest events are dropped and
 * counted, never the caller slowed. */
#ifndef CRID_POD_EVENTS_H
#define CRID_POD_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

/* The values of CRI's ContainerEventType. */
enum pod_event_kind
{
  POD_EVENT_CREATED = 0,
  POD_EVENT_STARTED = 1,
  POD_EVENT_STOPPED = 2,
  POD_EVENT_DELETED = 3,
};

struct pod_event
{
  enum pod_event_kind kind;
  char id[65];         /* the container's, or the sandbox's for a sandbox event */
  char sandbox_id[65]; /* the pod it belongs to */
  bool is_sandbox;
  int64_t at_ns; /* wall clock */
};

struct pod_events;

/* Runs on the delivery thread for every event after the subscription;
 * false ends the subscription (the subscriber is gone or cannot keep
 * up). */
typedef bool (*pod_event_fn)(void *data, const struct pod_event *event);

struct pod_events *pod_events_new(void);
/* Stops the delivery thread and ends every subscription left. */
void pod_events_free(struct pod_events *events);

void pod_events_publish(struct pod_events *events, enum pod_event_kind kind, const char *id,
                        const char *sandbox_id, bool is_sandbox);

/* fn(data, event) for each event from now on, until fn returns false;
 * then (or when the bus is freed) release(data) runs once, after the last
 * fn, on the delivery thread.  A subscriber that wants out without an
 * event to answer makes its next fn return false. */
void pod_events_subscribe(struct pod_events *events, pod_event_fn fn, void (*release)(void *data),
                          void *data);

#endif
