/* agentd-exec PPID PROGRAM [ARGS...]: runs PROGRAM so that it is killed when
 * agentd dies. libuv gives no hook between fork and exec, so this tiny helper
 * sets PR_SET_PDEATHSIG and then execs. If agentd died before the prctl took
 * effect the child is already re-parented, which the PPID check catches. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char *end;
    long ppid;

    if (argc < 3) {
        fprintf(stderr, "usage: agentd-exec PPID PROGRAM [ARGS...]\n");
        return 127;
    }
    errno = 0;
    ppid = strtol(argv[1], &end, 10);
    if (errno || *end || ppid <= 0) {
        fprintf(stderr, "agentd-exec: bad parent pid '%s'\n", argv[1]);
        return 127;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        fprintf(stderr, "agentd-exec: prctl: %s\n", strerror(errno));
        return 127;
    }
    if (getppid() != (pid_t)ppid)
        return 127;
    execvp(argv[2], argv + 2);
    fprintf(stderr, "agentd-exec: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
