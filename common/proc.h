/* proc.h: a process known by its identity — pid, start time (field 22 of
 * /proc/PID/stat) and executable — as the journal records one, so that a
 * later run (`amiforge clean`) stops that process and never a stranger that
 * reused its pid. */
#ifndef AMIFORGE_PROC_H
#define AMIFORGE_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Start time of pid (clock ticks since boot). 0, or -1 (errno ESRCH when
 * the process does not exist or is a zombie). */
int proc_starttime(pid_t pid, uint64_t *out);
/* The executable of pid (readlink /proc/PID/exe) into out[n]. 0 or -1. */
int proc_exe(pid_t pid, char *out, size_t n);

/* Stop the process fields name (decimal pid, decimal start time, absolute
 * executable path; untrusted: checked) if it is still that process:
 * SIGTERM, then SIGKILL. 0 also when it is gone or is someone else now (then
 * left alone, with a warning); -1 with the error recorded. */
int proc_release(const char *const *fields, size_t nfields);

#endif
