/* td_qjs_loop.c: the client's event loop for QuickJS, instead of quickjs-libc's `os` module
 * and js_std_loop (which link exec, stat, ttys, FILE objects... the client needs none).
 *
 * Exposed to JS through the `tdproc` module (qjs_main.c) and used only by
 * src/runtime/quickjs/loop.ts: setReadHandler, setTimeout/clearTimeout (one-shot), signal, now.
 * One loop round: fire the timers that are due, poll() the watched fds and the signal self-pipe
 * until the next deadline, run the handlers of the signals that arrived, then those of the ready
 * fds. Timers take ms (fractions too), are kept in µs of CLOCK_MONOTONIC (the clock of now())
 * and fire earliest deadline first, never before now() has reached setTime + ms: a client that
 * arms a timer for its next deadline is not woken a fraction of a ms early, only to find nothing
 * due and re-arm (a whole-ms clock did that for about half of all timers). The clock is read
 * once per wake-up, right after poll() returns (and once when the loop starts): now(), new
 * timers' deadlines, the due check and the next poll() timeout all use that reading, so a
 * wake-up costs one clock_gettime (a syscall where the clocksource has no vDSO, e.g. a TCG guest
 * on HPET or acpi_pm) instead of one per now()/setTimeout call; callbacks run for microseconds,
 * and a timer is at most their duration late, never early. Before the loop runs (the module's
 * evaluation) every now() reads the clock. After every callback the promise job queue is
 * drained. The loop ends when no fd is watched and no
 * timer is pending (signal handlers alone do not keep it alive, as in quickjs-libc).
 *
 * Failures are fatal and reported in one line: an exception escaping a callback exits 70
 * ("error: internal error in timer callback, exiting: Error: ..."; also "fd N", "signal N"), an
 * unhandled promise rejection or a failing module evaluation exits 1. loop.ts hands callbacks
 * over as they are: catching here costs nothing per call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quickjs.h"

typedef struct {
    int fd;
    unsigned gen; /* changes whenever the entry is (re)assigned: see td_loop_run */
    JSValue func;
} ReadHandler;

typedef struct {
    int32_t id;
    int64_t deadline; /* monotonic µs */
    JSValue func;
} Timer;

#define MAX_SIG 65 /* signal numbers 1..64 */

static ReadHandler *handlers;
static int n_handlers, cap_handlers;
static unsigned handler_gen;
static Timer *timers;
static int n_timers, cap_timers;
static int32_t last_timer_id;
static JSValue sig_funcs[MAX_SIG]; /* JS_UNDEFINED when none (set by td_loop_init) */
static int sig_pipe[2] = { -1, -1 };
/* The clock of this wake-up (µs), read after poll(); -1 outside td_loop_run. */
static int64_t wake_us = -1;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The time of the current wake-up inside the loop, the clock itself before it runs. */
static int64_t now_us(void)
{
    return wake_us >= 0 ? wake_us : mono_us();
}

/* Prints "error: <what>, exiting: <exception as string>" and exits with `code`. */
static void fatal_value(JSContext *ctx, const char *what, JSValueConst v, int code)
{
    const char *s = JS_ToCString(ctx, v);
    fprintf(stderr, "error: %s, exiting: %s\n", what, s ? s : "(exception not printable)");
    exit(code);
}

static void fatal_exception(JSContext *ctx, const char *what, int code)
{
    fatal_value(ctx, what, JS_GetException(ctx), code);
}

/* The host promise rejection tracker: the client never leaves a rejection unhandled on purpose. */
static void on_rejection(JSContext *ctx, JSValueConst promise, JSValueConst reason,
                         JS_BOOL is_handled, void *opaque)
{
    (void)promise; (void)opaque;
    if (!is_handled)
        fatal_value(ctx, "unhandled promise rejection", reason, 1);
}

static void run_jobs(JSRuntime *rt)
{
    JSContext *jctx;
    int rc;
    while ((rc = JS_ExecutePendingJob(rt, &jctx)) != 0) {
        if (rc < 0)
            fatal_exception(jctx, "internal error in a promise job", 70);
    }
}

/* Calls func() (the caller holds a reference), then drains the job queue. `what` names the
 * callback for the fatal message, formatted with `n` (fd or signal number) only then. */
static void call(JSContext *ctx, JSValueConst func, const char *what, int n)
{
    JSValue r = JS_Call(ctx, func, JS_UNDEFINED, 0, NULL);
    if (JS_IsException(r)) {
        char msg[64];
        snprintf(msg, sizeof msg, what, n);
        fatal_exception(ctx, msg, 70);
    }
    JS_FreeValue(ctx, r);
    run_jobs(JS_GetRuntime(ctx));
}

/* Grows *arr (elements of `size` bytes) to hold n + 1 entries; 0 or -1 without memory. */
static int reserve(void **arr, int *cap, int n, size_t size)
{
    void *p;
    if (n < *cap)
        return 0;
    p = realloc(*arr, (size_t)(*cap * 2 + 4) * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = *cap * 2 + 4;
    return 0;
}

static int find_handler(int fd)
{
    int i;
    for (i = 0; i < n_handlers; i++)
        if (handlers[i].fd == fd)
            return i;
    return -1;
}

static void remove_handler(JSContext *ctx, int i)
{
    JS_FreeValue(ctx, handlers[i].func);
    handlers[i] = handlers[--n_handlers];
}

/* setReadHandler(fd, cb): cb() whenever fd is readable (or has an error/hangup); null stops. */
static JSValue js_set_read_handler(JSContext *ctx, JSValueConst this_val, int argc,
                                   JSValueConst *argv)
{
    int fd, i;
    (void)this_val; (void)argc;
    if (JS_ToInt32(ctx, &fd, argv[0]))
        return JS_EXCEPTION;
    i = find_handler(fd);
    if (JS_IsNull(argv[1]) || JS_IsUndefined(argv[1])) {
        if (i >= 0)
            remove_handler(ctx, i);
        return JS_UNDEFINED;
    }
    if (fd < 0 || !JS_IsFunction(ctx, argv[1]))
        return JS_ThrowTypeError(ctx, "setReadHandler: expected an fd and a function or null");
    if (i < 0) {
        if (reserve((void **)&handlers, &cap_handlers, n_handlers, sizeof *handlers))
            return JS_ThrowOutOfMemory(ctx);
        i = n_handlers++;
        handlers[i].fd = fd;
    } else {
        JS_FreeValue(ctx, handlers[i].func);
    }
    handlers[i].gen = ++handler_gen;
    handlers[i].func = JS_DupValue(ctx, argv[1]);
    return JS_UNDEFINED;
}

/* setTimeout(cb, ms): one-shot timer, returns its id (> 0). ms may be fractional: the deadline
 * is rounded up to the next µs, so a caller that passes `deadline - now()` is never called
 * before now() reaches its deadline (and needs no Math.ceil of its own). */
static JSValue js_set_timeout(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    double ms;
    Timer *t;
    (void)this_val; (void)argc;
    if (!JS_IsFunction(ctx, argv[0]))
        return JS_ThrowTypeError(ctx, "setTimeout: expected a function");
    if (JS_ToFloat64(ctx, &ms, argv[1]))
        return JS_EXCEPTION;
    if (reserve((void **)&timers, &cap_timers, n_timers, sizeof *timers))
        return JS_ThrowOutOfMemory(ctx);
    t = &timers[n_timers++];
    if (++last_timer_id <= 0)
        last_timer_id = 1; /* after 2^31 timers (decades of ticks) */
    t->id = last_timer_id;
    if (!(ms > 0))
        ms = 0; /* also NaN */
    else if (ms > 1e12)
        ms = 1e12; /* 31 years; keeps the µs deadline far from overflow */
    t->deadline = now_us() + (int64_t)ceil(ms * 1000);
    t->func = JS_DupValue(ctx, argv[0]);
    return JS_NewInt32(ctx, t->id);
}

/* Removes timer i keeping the others in creation order (ties fire in that order). */
static void remove_timer(int i)
{
    memmove(&timers[i], &timers[i + 1], (size_t)(n_timers - i - 1) * sizeof *timers);
    n_timers--;
}

/* clearTimeout(id): unknown or already fired ids are ignored. */
static JSValue js_clear_timeout(JSContext *ctx, JSValueConst this_val, int argc,
                                JSValueConst *argv)
{
    int32_t id;
    int i;
    (void)this_val; (void)argc;
    if (JS_ToInt32(ctx, &id, argv[0]))
        return JS_EXCEPTION;
    for (i = 0; i < n_timers; i++) {
        if (timers[i].id == id) {
            JS_FreeValue(ctx, timers[i].func);
            remove_timer(i);
            break;
        }
    }
    return JS_UNDEFINED;
}

/* now(): CLOCK_MONOTONIC in milliseconds (fractional, like quickjs-libc's os.now), µs
 * resolution; inside the loop the time of the current wake-up (see the top of this file). */
static JSValue js_now(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc; (void)argv;
    return JS_NewFloat64(ctx, (double)now_us() / 1e3);
}

/* Async-signal-safe: the loop reads the signal number from the pipe (a full pipe only loses
 * repeats of signals that are already pending). */
static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* nothing to do in a signal handler */
    }
    errno = saved;
}

/* signal(sig, cb): cb() from the loop after sig; null = default action, undefined = ignore. */
static JSValue js_signal(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int sig;
    struct sigaction sa;
    JSValueConst f = argc > 1 ? argv[1] : JS_UNDEFINED;
    (void)this_val;
    if (JS_ToInt32(ctx, &sig, argv[0]))
        return JS_EXCEPTION;
    if (sig < 1 || sig >= MAX_SIG || sig == SIGKILL || sig == SIGSTOP)
        return JS_ThrowRangeError(ctx, "signal: invalid signal number %d", sig);
    if (!JS_IsNull(f) && !JS_IsUndefined(f) && !JS_IsFunction(ctx, f))
        return JS_ThrowTypeError(ctx, "signal: expected a function, null or undefined");
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return JS_ThrowInternalError(ctx, "signal: cannot create the signal pipe: %s",
                                     strerror(errno));
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = JS_IsFunction(ctx, f) ? on_signal : JS_IsNull(f) ? SIG_DFL : SIG_IGN;
    if (sigaction(sig, &sa, NULL) < 0)
        return JS_ThrowInternalError(ctx, "signal %d: %s", sig, strerror(errno));
    JS_FreeValue(ctx, sig_funcs[sig]);
    sig_funcs[sig] = JS_IsFunction(ctx, f) ? JS_DupValue(ctx, f) : JS_UNDEFINED;
    return JS_UNDEFINED;
}

const JSCFunctionListEntry td_loop_funcs[] = {
    JS_CFUNC_DEF("setReadHandler", 2, js_set_read_handler),
    JS_CFUNC_DEF("setTimeout", 2, js_set_timeout),
    JS_CFUNC_DEF("clearTimeout", 1, js_clear_timeout),
    JS_CFUNC_DEF("now", 0, js_now),
    JS_CFUNC_DEF("signal", 2, js_signal),
};
const int td_loop_funcs_count = sizeof td_loop_funcs / sizeof td_loop_funcs[0];

/* Reads the pending signal numbers from the pipe and calls their handlers. */
static void deliver_signals(JSContext *ctx)
{
    unsigned char buf[64];
    ssize_t n, i;
    while ((n = read(sig_pipe[0], buf, sizeof buf)) > 0) {
        for (i = 0; i < n; i++) {
            JSValue f = sig_funcs[buf[i] % MAX_SIG];
            if (JS_IsUndefined(f))
                continue; /* handler removed after the signal arrived */
            f = JS_DupValue(ctx, f); /* the handler may replace itself */
            call(ctx, f, "internal error in signal %d callback", buf[i] % MAX_SIG);
            JS_FreeValue(ctx, f);
        }
    }
}

/* Fires the timers due at this wake-up's time that existed when the round began (a 0 ms timer
 * set by a timer callback waits for the next round, so timers cannot starve the fds). Returns
 * the delay to the next deadline in ms, or -1 when no timer is left. */
static int fire_timers(JSContext *ctx)
{
    int32_t round_max = last_timer_id;
    int64_t now = wake_us, next;
    int i, due;

    for (;;) {
        due = -1;
        for (i = 0; i < n_timers; i++) {
            if (timers[i].deadline <= now && timers[i].id <= round_max &&
                (due < 0 || timers[i].deadline < timers[due].deadline))
                due = i;
        }
        if (due < 0)
            break;
        JSValue f = timers[due].func;
        remove_timer(due);
        call(ctx, f, "internal error in timer callback", 0);
        JS_FreeValue(ctx, f);
    }
    if (n_timers == 0)
        return -1;
    next = timers[0].deadline - now;
    for (i = 1; i < n_timers; i++) {
        if (timers[i].deadline - now < next)
            next = timers[i].deadline - now;
    }
    /* due already (set during this round): poll() without waiting; else round up, so poll()
     * does not return before the deadline */
    if (next <= 0)
        return 0;
    next = (next + 999) / 1000;
    return next > 3600000 ? 3600000 : (int)next;
}

void td_loop_run(JSContext *ctx)
{
    struct pollfd *pfds = NULL;
    struct { int fd; unsigned gen; } *seen = NULL; /* the handlers poll() was asked about */
    int cap = 0;

    wake_us = mono_us();
    for (;;) {
        int timeout, n, i, nh, nready = 0, base = 0;

        timeout = fire_timers(ctx);
        if (n_handlers == 0 && n_timers == 0)
            break;
        if (n_handlers + 1 > cap) {
            cap = n_handlers + 8;
            pfds = realloc(pfds, (size_t)cap * sizeof *pfds);
            seen = realloc(seen, (size_t)cap * sizeof *seen);
            if (!pfds || !seen) {
                fprintf(stderr, "error: out of memory in the event loop, exiting\n");
                exit(70);
            }
        }
        if (sig_pipe[0] >= 0) {
            pfds[0].fd = sig_pipe[0];
            pfds[0].events = POLLIN;
            base = 1;
        }
        nh = n_handlers;
        for (i = 0; i < nh; i++) {
            pfds[base + i].fd = seen[i].fd = handlers[i].fd;
            pfds[base + i].events = POLLIN;
            seen[i].gen = handlers[i].gen;
        }
        n = poll(pfds, (nfds_t)(base + nh), timeout);
        wake_us = mono_us();
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "error: poll() in the event loop failed: %s, exiting\n", strerror(errno));
            exit(70);
        }
        if (n == 0)
            continue;
        if (base && pfds[0].revents)
            deliver_signals(ctx);
        /* Callbacks may add, remove or replace handlers: each ready entry is dispatched only if
         * its handler is still the one poll() saw (same gen), so a handler removed (or an fd
         * closed and reused) by an earlier callback of this round is not called. */
        for (i = 0; i < nh; i++) {
            short re = pfds[base + i].revents;
            int h = find_handler(seen[i].fd);
            if (re & POLLNVAL) {
                /* closed without setReadHandler(fd, null): poll() would report it forever */
                if (h >= 0 && handlers[h].gen == seen[i].gen) {
                    fprintf(stderr, "warning: fd %d was closed while watched, no longer watching it\n",
                            seen[i].fd);
                    remove_handler(ctx, h);
                }
            } else if (re & (POLLIN | POLLERR | POLLHUP)) {
                seen[nready++] = seen[i];
            }
        }
        for (i = 0; i < nready; i++) {
            int h = find_handler(seen[i].fd);
            if (h < 0 || handlers[h].gen != seen[i].gen)
                continue;
            JSValue f = JS_DupValue(ctx, handlers[h].func);
            call(ctx, f, "internal error in fd %d callback", seen[i].fd);
            JS_FreeValue(ctx, f);
        }
    }
    wake_us = -1;
    free(pfds);
    free(seen);
}

/* Installs the promise rejection tracker; call once after JS_NewRuntime. */
void td_loop_init(JSRuntime *rt)
{
    int i;
    for (i = 0; i < MAX_SIG; i++)
        sig_funcs[i] = JS_UNDEFINED;
    JS_SetHostPromiseRejectionTracker(rt, on_rejection, NULL);
}

/* Runs the precompiled module (qjsc -c -m output): link its imports (the C modules registered
 * before), evaluate it, drain the job queue. Failures print one line and exit 1. */
void td_loop_eval_module(JSContext *ctx, const uint8_t *buf, size_t len)
{
    JSValue m = JS_ReadObject(ctx, buf, len, JS_READ_OBJ_BYTECODE), r;
    if (JS_IsException(m))
        fatal_exception(ctx, "cannot load the client bytecode", 1);
    if (JS_ResolveModule(ctx, m) < 0)
        fatal_exception(ctx, "cannot link the client module", 1);
    r = JS_EvalFunction(ctx, m); /* takes m; a module yields a promise */
    if (JS_IsException(r))
        fatal_exception(ctx, "client start failed", 1);
    run_jobs(JS_GetRuntime(ctx));
    if (JS_PromiseState(ctx, r) == JS_PROMISE_REJECTED)
        fatal_value(ctx, "client start failed", JS_PromiseResult(ctx, r), 1);
    JS_FreeValue(ctx, r);
}

/* Releases what the loop still holds (signal handlers), so JS_FreeRuntime finds no leak. */
void td_loop_free(JSContext *ctx)
{
    int i;
    for (i = 0; i < MAX_SIG; i++) {
        JS_FreeValue(ctx, sig_funcs[i]);
        sig_funcs[i] = JS_UNDEFINED;
    }
}
