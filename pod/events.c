#include "pod/events.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_CAPACITY 4096

struct subscriber
{
  pod_event_fn fn;
  void (*release)(void *data);
  void *data;
};

struct pod_events
{
  pthread_mutex_t lock; /* the queue and the subscriber list */
  pthread_cond_t wake;
  struct pod_event queue[QUEUE_CAPACITY];
  size_t head, n;
  uint64_t dropped;
  struct subscriber *subscribers;
  size_t n_subscribers, cap_subscribers;
  bool stopping;
  pthread_t thread;
};

/* Delivers one event.  Only the delivery thread changes the list apart
 * from appending, so its entries stay valid without the lock. */
static void
deliver(struct pod_events *events, const struct pod_event *event)
{
  size_t n, kept = 0;

  pthread_mutex_lock(&events->lock);
  n = events->n_subscribers;
  pthread_mutex_unlock(&events->lock);
  for (size_t i = 0; i < n; i++)
    {
      struct subscriber subscriber;
      pthread_mutex_lock(&events->lock);
      subscriber = events->subscribers[i];
      pthread_mutex_unlock(&events->lock);
      if (subscriber.fn(subscriber.data, event))
        {
          pthread_mutex_lock(&events->lock);
          events->subscribers[kept++] = subscriber;
          pthread_mutex_unlock(&events->lock);
        }
      else if (subscriber.release)
        subscriber.release(subscriber.data);
    }
  /* Those that subscribed meanwhile follow the kept ones. */
  pthread_mutex_lock(&events->lock);
  memmove(&events->subscribers[kept], &events->subscribers[n],
          (events->n_subscribers - n) * sizeof *events->subscribers);
  events->n_subscribers = kept + (events->n_subscribers - n);
  pthread_mutex_unlock(&events->lock);
}

static void *
delivery_thread(void *arg)
{
  struct pod_events *events = arg;

  pthread_mutex_lock(&events->lock);
  for (;;)
    {
      struct pod_event event;
      while (events->n == 0 && !events->stopping)
        pthread_cond_wait(&events->wake, &events->lock);
      if (events->n == 0 && events->stopping)
        break;
      event = events->queue[events->head];
      events->head = (events->head + 1) % QUEUE_CAPACITY;
      events->n--;
      /* An empty queue starts over at its first slot: a burst touches only
       * as many pages of the queue as it has events, instead of walking
       * every page of it into memory over time. */
      if (events->n == 0)
        events->head = 0;
      pthread_mutex_unlock(&events->lock);
      deliver(events, &event);
      pthread_mutex_lock(&events->lock);
    }
  pthread_mutex_unlock(&events->lock);
  return NULL;
}

struct pod_events *
pod_events_new(void)
{
  struct pod_events *events = xcalloc(1, sizeof *events);

  pthread_mutex_init(&events->lock, NULL);
  pthread_cond_init(&events->wake, NULL);
  if (pthread_create(&events->thread, NULL, delivery_thread, events) != 0)
    abort();
  return events;
}

void
pod_events_free(struct pod_events *events)
{
  if (events == NULL)
    return;
  pthread_mutex_lock(&events->lock);
  events->stopping = true;
  pthread_cond_signal(&events->wake);
  pthread_mutex_unlock(&events->lock);
  pthread_join(events->thread, NULL);
  for (size_t i = 0; i < events->n_subscribers; i++)
    if (events->subscribers[i].release)
      events->subscribers[i].release(events->subscribers[i].data);
  free(events->subscribers);
  pthread_mutex_destroy(&events->lock);
  pthread_cond_destroy(&events->wake);
  free(events);
}

void
pod_events_publish(struct pod_events *events, enum pod_event_kind kind, const char *id,
                   const char *sandbox_id, bool is_sandbox)
{
  struct pod_event *event;

  if (events == NULL)
    return;
  pthread_mutex_lock(&events->lock);
  if (events->n_subscribers == 0)
    {
      /* Events are from the subscription on: none waits for this one. */
      pthread_mutex_unlock(&events->lock);
      return;
    }
  if (events->n == QUEUE_CAPACITY)
    {
      events->head = (events->head + 1) % QUEUE_CAPACITY;
      events->n--;
      if (events->dropped++ % 1000 == 0)
        log_warn("events: delivery is behind, dropped %llu events",
                 (unsigned long long)events->dropped);
    }
  event = &events->queue[(events->head + events->n) % QUEUE_CAPACITY];
  memset(event, 0, sizeof *event);
  event->kind = kind;
  snprintf(event->id, sizeof event->id, "%s", id);
  snprintf(event->sandbox_id, sizeof event->sandbox_id, "%s", sandbox_id ? sandbox_id : id);
  event->is_sandbox = is_sandbox;
  event->at_ns = time_realtime_ns();
  events->n++;
  pthread_cond_signal(&events->wake);
  pthread_mutex_unlock(&events->lock);
}

void
pod_events_subscribe(struct pod_events *events, pod_event_fn fn, void (*release)(void *data),
                     void *data)
{
  pthread_mutex_lock(&events->lock);
  if (events->n_subscribers == events->cap_subscribers)
    {
      events->cap_subscribers = events->cap_subscribers ? events->cap_subscribers * 2 : 8;
      events->subscribers
          = xrealloc(events->subscribers, events->cap_subscribers * sizeof *events->subscribers);
    }
  events->subscribers[events->n_subscribers++] = (struct subscriber){ fn, release, data };
  pthread_mutex_unlock(&events->lock);
}
