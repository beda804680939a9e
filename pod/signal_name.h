/* pod/signal_name: the names of signals, as an image's StopSignal and
 * the CRI's stop_signal spell them. */
#ifndef CRID_POD_SIGNAL_NAME_H
#define CRID_POD_SIGNAL_NAME_H

/* "SIGTERM", "TERM", "15", "SIGRTMIN+3", "RTMAX-2" (any case) -> a signal
 * number; -1 when not a signal. */
int signal_parse(const char *text);

#endif
