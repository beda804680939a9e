/* common/failpoint: named crash points for the tests of crash
 * consistency.  When the environment variable CRID_FAILPOINT names a
 * point, the process kills itself (SIGKILL, as an OOM kill or a `kill -9`
 * would) the first time it gets there.  Without the variable a failpoint
 * costs one load and a branch.  Names are "<object>.<after-what>", e.g.
 * "sandbox.after-network-add"; tests find every name in the sources. */
#ifndef CRID_COMMON_FAILPOINT_H
#define CRID_COMMON_FAILPOINT_H

void failpoint(const char *name);

#endif
