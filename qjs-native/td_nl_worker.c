/* td_nl_worker: see td_nl_worker.h. One thread, two FIFO lists under one mutex: requests to run
 * and completions to take. The eventfd is written and read under the mutex too, so a completion
 * added while the loop takes the others is never lost (the loop re-arms it when it leaves some). */
#define _GNU_SOURCE
#include "td_nl_worker.h"
#include "td_core.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct job {
    struct job *next;
    int fd;
    uint32_t tag;
    size_t len;
    struct td_nlw_done done; /* filled by the worker */
    uint8_t request[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct job *todo_head, *todo_tail, *done_head, *done_tail;
static unsigned queued;
static int event_fd = -1;

static void append(struct job **head, struct job **tail, struct job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void signal_event(void)
{
    uint64_t one = 1;
    ssize_t n;
    do n = write(event_fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

static void run(struct job *j)
{
    ssize_t n = td_netlink_send(j->fd, j->request, j->len);
    j->done.tag = j->tag;
    if (n >= 0) {
        /* the kernel queued the ACK before sendmsg returned; MSG_TRUNC: report a cut reply */
        do n = recv(j->fd, j->done.reply, sizeof j->done.reply, MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
        else if ((size_t)n > sizeof j->done.reply)
            n = -EMSGSIZE;
    }
    j->done.result = (int32_t)n;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        struct job *j;
        pthread_mutex_lock(&lock);
        while (!todo_head)
            pthread_cond_wait(&work, &lock);
        j = todo_head;
        todo_head = j->next;
        if (!todo_head)
            todo_tail = NULL;
        pthread_mutex_unlock(&lock);

        run(j);

        pthread_mutex_lock(&lock);
        append(&done_head, &done_tail, j);
        signal_event();
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int td_nlw_start(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    sigset_t all, old;
    int fd, rc;
    pthread_mutex_lock(&lock);
    if (event_fd >= 0) {
        pthread_mutex_unlock(&lock);
        return event_fd;
    }
    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        pthread_mutex_unlock(&lock);
        return rc;
    }
    /* the thread takes no signals (they stay with the event loop's thread) and needs little
     * stack (the buffers are in the jobs) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, worker, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(fd);
        pthread_mutex_unlock(&lock);
        return -rc;
    }
    event_fd = fd;
    pthread_mutex_unlock(&lock);
    return fd;
}

int td_nlw_submit(int fd, const void *request, size_t len, uint32_t tag)
{
    struct job *j;
    if (len == 0 || len > TD_NLW_MAX_BYTES)
        return -EINVAL;
    j = malloc(sizeof *j + len);
    if (!j)
        return -ENOMEM;
    j->fd = fd;
    j->tag = tag;
    j->len = len;
    memcpy(j->request, request, len);
    pthread_mutex_lock(&lock);
    if (event_fd < 0 || queued >= TD_NLW_MAX_QUEUED) {
        int rc = event_fd < 0 ? -EINVAL : -EAGAIN;
        pthread_mutex_unlock(&lock);
        free(j);
        return rc;
    }
    queued++;
    append(&todo_head, &todo_tail, j);
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
    return 0;
}

int td_nlw_take(struct td_nlw_done *out, unsigned max)
{
    uint64_t count;
    unsigned n = 0;
    pthread_mutex_lock(&lock);
    if (event_fd >= 0 && read(event_fd, &count, sizeof count) < 0) {
        /* EAGAIN: not signalled (nothing done, or taken already) */
    }
    while (done_head && n < max) {
        struct job *j = done_head;
        done_head = j->next;
        if (!done_head)
            done_tail = NULL;
        memcpy(&out[n++], &j->done, sizeof j->done);
        queued--;
        free(j);
    }
    if (done_head)
        signal_event(); /* more than max: readable again */
    pthread_mutex_unlock(&lock);
    return (int)n;
}

unsigned td_nlw_pending(void)
{
    unsigned n;
    pthread_mutex_lock(&lock);
    n = queued;
    pthread_mutex_unlock(&lock);
    return n;
}
