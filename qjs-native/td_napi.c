/* Node-API binding of td_core (build/node/tdnative.node): exactly the Native interface of
 * src/native.ts, plus watch(fd, cb)/unwatch(fd) on the Node event loop (libuv uv_poll_t).
 * Built with plain gcc against /usr/include/node; no node-gyp. */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "td_core.h"
#include "td_nl_worker.h"

/* ---- argument helpers: type errors throw, everything else returns -errno ---- */

#define CHECK(call)                                                             \
    do {                                                                        \
        if ((call) != napi_ok) {                                                \
            throw_last(env);                                                    \
            return NULL;                                                        \
        }                                                                       \
    } while (0)

static void throw_last(napi_env env)
{
    const napi_extended_error_info *info = NULL;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending)
        return;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "tdnative: N-API call failed");
}

static napi_value type_error(napi_env env, const char *msg)
{
    napi_throw_type_error(env, NULL, msg);
    return NULL;
}

#define MAX_ARGS 6
#define GET_ARGS(n)                                                             \
    size_t argc = MAX_ARGS;                                                     \
    napi_value argv[MAX_ARGS];                                                  \
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));               \
    if (argc < (n))                                                             \
        return type_error(env, "tdnative: missing arguments");

static bool arg_int(napi_env env, napi_value v, int32_t *out)
{
    napi_valuetype t;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
        napi_throw_type_error(env, NULL, "tdnative: expected a number");
        return false;
    }
    napi_get_value_int32(env, v, out);
    return true;
}

/* Returns a malloc'ed UTF-8 copy or NULL with a TypeError thrown. */
static char *arg_string(napi_env env, napi_value v)
{
    size_t len = 0;
    char *s;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        napi_throw_type_error(env, NULL, "tdnative: expected a string");
        return NULL;
    }
    s = malloc(len + 1);
    if (!s) {
        napi_throw_error(env, NULL, "tdnative: out of memory");
        return NULL;
    }
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
    return s;
}

static bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len)
{
    bool is_ta = false;
    napi_typedarray_type type;
    size_t length;
    if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, v, &type, &length, data, NULL, NULL) != napi_ok ||
        (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array)) {
        napi_throw_type_error(env, NULL, "tdnative: expected a Uint8Array");
        return false;
    }
    *len = length;
    if (!*data)
        *data = (void *)""; /* empty view may have no backing store; len is 0 anyway */
    return true;
}

static napi_value num(napi_env env, double v)
{
    napi_value r;
    if (napi_create_double(env, v, &r) != napi_ok)
        return NULL;
    return r;
}

/* Sets ip, port and family of ep on obj (a new object when obj is NULL). */
static napi_value make_endpoint(napi_env env, napi_value obj, const struct td_endpoint *ep)
{
    napi_value s;
    if (!obj)
        CHECK(napi_create_object(env, &obj));
    CHECK(napi_create_string_utf8(env, ep->ip, NAPI_AUTO_LENGTH, &s));
    CHECK(napi_set_named_property(env, obj, "ip", s));
    CHECK(napi_set_named_property(env, obj, "port", num(env, ep->port)));
    CHECK(napi_set_named_property(env, obj, "family", num(env, ep->family)));
    return obj;
}

/* ---- fd readiness on the Node loop ---- */

struct watcher {
    uv_poll_t poll;
    int fd;
    bool closing;
    napi_env env;
    napi_ref cb;
    napi_async_context actx;
    struct watcher *next;
    /* watchDatagrams: read by the addon (recvmmsg), reported in batches (dgram_reader) */
    bool dgram;
    bool queued;
    /* an error taken with SO_ERROR on POLLERR, reported in the next batch (positive errno) */
    int pending_err;
    struct watcher *ready_next;
    /* watchDatagrams(fd, true): in the reader's deferred set (its own epoll set), not polled */
    bool deferred;
};

struct dgram_reader;

struct deadline_timer;

struct addon {
    struct watcher *watchers;
    struct dgram_reader *reader;
    struct deadline_timer *timer;
};

static struct addon *get_addon(napi_env env)
{
    void *data = NULL;
    napi_get_instance_data(env, &data);
    return data;
}

static struct watcher *find_watcher(struct addon *a, int fd)
{
    struct watcher *w;
    for (w = a ? a->watchers : NULL; w; w = w->next)
        if (w->fd == fd && !w->closing)
            return w;
    return NULL;
}

static void unlink_watcher(struct addon *a, struct watcher *w)
{
    struct watcher **pp;
    for (pp = &a->watchers; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

/* A JS callback kept for call_js: fn referenced, with an async context named name. Replaces
 * what *cb / *actx held. false with a napi error pending. */
static bool js_callback_set(napi_env env, napi_value fn, const char *name, napi_ref *cb, napi_async_context *actx);

/* Drops a JS callback (its reference and async context), if any. */
static void js_callback_clear(napi_env env, napi_ref *cb, napi_async_context *actx)
{
    if (*cb)
        napi_delete_reference(env, *cb);
    if (*actx)
        napi_async_destroy(env, *actx);
    *cb = NULL;
    *actx = NULL;
}

static bool js_callback_set(napi_env env, napi_value fn, const char *name, napi_ref *cb, napi_async_context *actx)
{
    napi_value n;
    js_callback_clear(env, cb, actx);
    return napi_create_reference(env, fn, 1, cb) == napi_ok &&
           napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &n) == napi_ok &&
           napi_async_init(env, NULL, n, actx) == napi_ok;
}

/* Runs on a later loop turn than unwatch(), so never inside this watcher's own callback. */
static void dgram_unqueue(struct addon *a, struct watcher *w);

static void on_watcher_closed(uv_handle_t *h)
{
    struct watcher *w = (struct watcher *)h;
    struct addon *a = get_addon(w->env);
    if (a) {
        unlink_watcher(a, w);
        dgram_unqueue(a, w);
    }
    js_callback_clear(w->env, &w->cb, &w->actx);
    free(w);
}

static void deferred_remove(struct watcher *w);

static void stop_watcher(struct watcher *w)
{
    if (w->closing)
        return;
    w->closing = true;
    if (w->deferred)
        deferred_remove(w); /* before the fd can be closed: the epoll set holds a pointer to w */
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, on_watcher_closed);
}

/* Calls the JS function of cb_ref from a libuv callback, with no arguments or with one uint32
 * (has_arg): napi_make_callback (async context for hooks, microtasks drained afterwards); an
 * exception goes to the process ('uncaughtException'). */
static void call_js(napi_env env, napi_async_context actx, napi_ref cb_ref, bool has_arg, uint32_t arg)
{
    napi_handle_scope scope;
    napi_value cb, global, result, exc, argv[1];
    bool pending = false;
    if (!cb_ref || napi_open_handle_scope(env, &scope) != napi_ok)
        return;
    if (napi_get_reference_value(env, cb_ref, &cb) == napi_ok && cb && napi_get_global(env, &global) == napi_ok &&
        (!has_arg || napi_create_uint32(env, arg, &argv[0]) == napi_ok)) {
        if (napi_make_callback(env, actx, global, cb, has_arg ? 1 : 0, has_arg ? argv : NULL, &result) != napi_ok) {
            napi_is_exception_pending(env, &pending);
            if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok)
                napi_fatal_exception(env, exc);
        }
    }
    napi_close_handle_scope(env, scope);
}

static void dgram_ready(struct watcher *w);

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct watcher *w = (struct watcher *)h;
    napi_env env = w->env;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    (void)events;
    if (w->closing)
        return;
    if (w->dgram) {
        /* POLLERR stopped the handle as below; the batch read comes later (check phase), so
         * the error is taken (and so cleared) here, kept for that batch, and the socket is
         * watched again. */
        if (status < 0 && !w->closing) {
            if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr > 0)
                w->pending_err = soerr;
            if (uv_poll_start(&w->poll, UV_READABLE, on_readable) < 0) {
                stop_watcher(w);
                return;
            }
        }
        dgram_ready(w);
        return;
    }
    call_js(env, w->actx, w->cb, false, 0);
    /* On POLLERR (a connected UDP socket got an ICMP error: the peer's port was closed for a
     * while) libuv has stopped this handle before calling us (status UV_EBADF). The callback's
     * read reported the errno; the socket works on, so watch it again, or nothing sent to it
     * later is ever read. A pending error the callback left is cleared first (SO_ERROR), so a
     * callback that did not read cannot make this spin. */
    if (status < 0 && !w->closing) {
        (void)getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (uv_poll_start(&w->poll, UV_READABLE, on_readable) < 0)
            stop_watcher(w);
    }
}

/* A new watcher of fd (uv_poll initialised, not started, not linked): 0 or -errno. */
static int watcher_new(napi_env env, int fd, struct watcher **out)
{
    struct watcher *w;
    uv_loop_t *loop;
    int rc;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok)
        return -EINVAL;
    w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    rc = uv_poll_init(loop, &w->poll, fd); /* libuv errors are -errno on Unix */
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->fd = fd;
    w->env = env;
    *out = w;
    return 0;
}

/* Links w into the addon's list and starts polling: 0 or -errno (then w is closed). */
static int watcher_start(struct addon *a, struct watcher *w)
{
    int rc;
    w->next = a->watchers;
    a->watchers = w;
    rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (rc < 0)
        stop_watcher(w);
    return rc;
}

static napi_value js_watch(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    struct watcher *w;
    napi_valuetype t;
    int32_t fd;
    int rc;
    GET_ARGS(2);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    CHECK(napi_typeof(env, argv[1], &t));
    if (t != napi_function)
        return type_error(env, "tdnative.watch: expected a callback function");
    if ((w = find_watcher(a, fd)) != NULL && w->dgram) {
        stop_watcher(w); /* watched by watchDatagrams until now */
        w = NULL;
    }
    if (w) {
        /* Already watched: just swap the callback. */
        napi_delete_reference(env, w->cb);
        CHECK(napi_create_reference(env, argv[1], 1, &w->cb));
        return num(env, 0);
    }
    if ((rc = watcher_new(env, fd, &w)) < 0)
        return num(env, rc);
    if (!js_callback_set(env, argv[1], "tdnative.watch", &w->cb, &w->actx)) {
        /* The handle is initialised, so it must go through uv_close. */
        w->closing = true;
        w->next = a->watchers;
        a->watchers = w;
        uv_close((uv_handle_t *)&w->poll, on_watcher_closed);
        throw_last(env);
        return NULL;
    }
    return num(env, watcher_start(a, w));
}

static napi_value js_unwatch(napi_env env, napi_callback_info info)
{
    struct watcher *w;
    int32_t fd;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    w = find_watcher(get_addon(env), fd);
    if (w)
        stop_watcher(w);
    return NULL;
}

static void dgram_reader_close(struct addon *a);

/* Environment teardown (process exit, worker end): release the libuv handles. */
static void deadline_timer_close(struct addon *a);

static void on_env_cleanup(void *arg)
{
    struct addon *a = arg;
    struct watcher *w;
    for (w = a->watchers; w; w = w->next)
        if (!w->closing) {
            w->closing = true;
            uv_poll_stop(&w->poll);
        }
    dgram_reader_close(a);
    deadline_timer_close(a);
}

static void on_addon_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    /* Handles may still be referenced by the loop at this point; only the list head goes. */
    free(data);
}

/* ---- UDP ---- */

/* udpSocket(family?: 4 | 6): 4 when absent or undefined. */
static napi_value js_udp_socket(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    napi_valuetype t = napi_undefined;
    int32_t family = 4;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc >= 1)
        CHECK(napi_typeof(env, argv[0], &t));
    if (t != napi_undefined && !arg_int(env, argv[0], &family))
        return NULL;
    return num(env, td_udp_socket(family));
}

#define FD_ONLY(jsname, cfunc)                                                  \
    static napi_value jsname(napi_env env, napi_callback_info info)             \
    {                                                                           \
        int32_t fd;                                                             \
        GET_ARGS(1);                                                            \
        if (!arg_int(env, argv[0], &fd))                                        \
            return NULL;                                                        \
        return num(env, cfunc(fd));                                             \
    }

/* (fd, bytes) -> ssize_t calls: send, read and the netlink pair. */
#define FD_BYTES(jsname, cfunc)                                                 \
    static napi_value jsname(napi_env env, napi_callback_info info)             \
    {                                                                           \
        int32_t fd;                                                             \
        void *data;                                                             \
        size_t len;                                                             \
        GET_ARGS(2);                                                            \
        if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len)) \
            return NULL;                                                        \
        return num(env, (double)cfunc(fd, data, len));                          \
    }

FD_ONLY(js_set_reuseport, td_set_reuseport)
FD_ONLY(js_set_pmtu_probe, td_set_pmtu_probe)
FD_ONLY(js_local_port, td_local_port)

static napi_value js_bind_to_device(napi_env env, napi_callback_info info)
{
    int32_t fd;
    char *dev;
    int rc;
    GET_ARGS(2);
    if (!arg_int(env, argv[0], &fd) || !(dev = arg_string(env, argv[1])))
        return NULL;
    rc = td_bind_to_device(fd, dev);
    free(dev);
    return num(env, rc);
}

static napi_value bind_or_connect(napi_env env, napi_callback_info info, int (*fn)(int, const char *, uint16_t))
{
    int32_t fd, port;
    char *ip;
    int rc;
    GET_ARGS(3);
    if (!arg_int(env, argv[0], &fd) || !(ip = arg_string(env, argv[1])))
        return NULL;
    if (!arg_int(env, argv[2], &port)) {
        free(ip);
        return NULL;
    }
    rc = (port >= 0 && port <= 65535) ? fn(fd, ip, (uint16_t)port) : -EINVAL;
    free(ip);
    return num(env, rc);
}

static napi_value js_bind(napi_env env, napi_callback_info info) { return bind_or_connect(env, info, td_bind); }
static napi_value js_connect(napi_env env, napi_callback_info info) { return bind_or_connect(env, info, td_connect); }

FD_BYTES(js_send, td_send)

static napi_value js_send_to(napi_env env, napi_callback_info info)
{
    int32_t fd, port;
    void *data;
    size_t len;
    char *ip;
    ssize_t rc;
    GET_ARGS(4);
    if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) || !arg_int(env, argv[3], &port) ||
        !(ip = arg_string(env, argv[2])))
        return NULL;
    rc = (port >= 0 && port <= 65535) ? td_sendto(fd, data, len, ip, (uint16_t)port) : -EINVAL;
    free(ip);
    return num(env, (double)rc);
}

static napi_value js_recv_from(napi_env env, napi_callback_info info)
{
    int32_t fd;
    void *data;
    size_t len;
    struct td_endpoint from;
    napi_valuetype t;
    ssize_t n;
    GET_ARGS(3);
    if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len))
        return NULL;
    CHECK(napi_typeof(env, argv[2], &t));
    if (t != napi_object)
        return type_error(env, "tdnative.recvFrom: expected an Endpoint object");
    n = td_recvfrom(fd, data, len, &from);
    if (n >= 0 && !make_endpoint(env, argv[2], &from))
        return NULL;
    return num(env, (double)n);
}

/* close() also drops a watcher on the fd, so a reused fd number is never polled by mistake. */
static napi_value js_close(napi_env env, napi_callback_info info)
{
    struct watcher *w;
    int32_t fd;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    if ((w = find_watcher(get_addon(env), fd)) != NULL)
        stop_watcher(w);
    return num(env, td_close(fd));
}

/* ---- netlink ---- */

FD_ONLY(js_netlink_socket, td_netlink_socket)

FD_BYTES(js_netlink_send, td_netlink_send)

FD_BYTES(js_netlink_recv, td_netlink_recv)

/* ---- processes ---- */

typedef pid_t (*spawn_fn)(const char *, char *const[], int, int *);

static napi_value spawn_with(napi_env env, napi_callback_info info, spawn_fn fn)
{
    char *path = NULL, **cargv = NULL;
    uint32_t nargs = 0, i, filled = 0;
    bool is_array = false, capture = false;
    napi_value result = NULL, item;
    int out_fd = -1, rc;
    size_t bytes = 0;
    pid_t pid;
    GET_ARGS(3);
    CHECK(napi_is_array(env, argv[1], &is_array));
    if (!is_array)
        return type_error(env, "tdnative.spawn: args must be an array of strings");
    CHECK(napi_get_array_length(env, argv[1], &nargs));
    if (napi_get_value_bool(env, argv[2], &capture) != napi_ok)
        return type_error(env, "tdnative.spawn: captureOutput must be a boolean");
    if ((rc = td_argv_size(nargs, sizeof *cargv, &bytes)) < 0)
        return num(env, rc);
    if (!(path = arg_string(env, argv[0])))
        return NULL;
    cargv = calloc(1, bytes);
    if (!cargv) {
        free(path);
        return num(env, -ENOMEM);
    }
    cargv[0] = path;
    for (i = 0; i < nargs; i++, filled++) {
        if (napi_get_element(env, argv[1], i, &item) != napi_ok || !(cargv[i + 1] = arg_string(env, item)))
            goto out;
    }
    pid = fn(path, cargv, capture, &out_fd);
    if (pid < 0) {
        result = num(env, pid);
    } else if (napi_create_object(env, &result) != napi_ok ||
               napi_set_named_property(env, result, "pid", num(env, pid)) != napi_ok ||
               napi_set_named_property(env, result, "outFd", num(env, out_fd)) != napi_ok) {
        throw_last(env);
        result = NULL;
    }
out:
    for (i = 0; i < filled; i++)
        free(cargv[i + 1]);
    free(cargv);
    free(path);
    return result;
}

static napi_value js_spawn(napi_env env, napi_callback_info info) { return spawn_with(env, info, td_spawn); }

#ifdef TD_LEGACY_FORK_SPAWN
static napi_value js_spawn_fork(napi_env env, napi_callback_info info) { return spawn_with(env, info, td_spawn_fork); }
#endif

FD_ONLY(js_pid_watch, td_pid_watch)

FD_BYTES(js_read, td_read)

static napi_value js_wait_pid(napi_env env, napi_callback_info info)
{
    int32_t pid;
    int code = 0, rc;
    napi_value r;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &pid))
        return NULL;
    rc = td_wait_pid(pid, &code);
    if (rc == 0) {
        CHECK(napi_get_null(env, &r));
        return r;
    }
    return num(env, rc < 0 ? rc : code);
}

/* (pid, int) -> int calls: kill(pid, signal), renice of a process group. */
#define PID_INT(jsname, cfunc)                                                  \
    static napi_value jsname(napi_env env, napi_callback_info info)             \
    {                                                                           \
        int32_t pid, v;                                                         \
        GET_ARGS(2);                                                            \
        if (!arg_int(env, argv[0], &pid) || !arg_int(env, argv[1], &v))         \
            return NULL;                                                        \
        return num(env, cfunc(pid, v));                                         \
    }

PID_INT(js_kill, td_kill)
PID_INT(js_renice_group, td_renice_group)

/* ---- resolver ---- */

static napi_value js_resolve_start(napi_env env, napi_callback_info info)
{
    char *host, *service;
    int rc;
    GET_ARGS(2);
    if (!(host = arg_string(env, argv[0])))
        return NULL;
    if (!(service = arg_string(env, argv[1]))) {
        free(host);
        return NULL;
    }
    rc = td_resolve_start(host, service);
    free(host);
    free(service);
    return num(env, rc);
}

/* The first IPv4 address (what callers of the IPv4-only resolver got; else the first address),
 * plus `all`: every address in getaddrinfo's order. */
static napi_value js_resolve_finish(napi_env env, napi_callback_info info)
{
    struct td_endpoint addrs[TD_RESOLVE_MAX_ADDRS];
    napi_value r, all, item;
    int32_t fd;
    int n, i, first = 0;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    n = td_resolve_finish(fd, addrs, TD_RESOLVE_MAX_ADDRS);
    if (n < 0)
        return num(env, n);
    while (first < n && addrs[first].family != 4)
        first++;
    if (!(r = make_endpoint(env, NULL, &addrs[first < n ? first : 0])))
        return NULL;
    CHECK(napi_create_array_with_length(env, (size_t)n, &all));
    for (i = 0; i < n; i++) {
        if (!(item = make_endpoint(env, NULL, &addrs[i])))
            return NULL;
        CHECK(napi_set_element(env, all, (uint32_t)i, item));
    }
    CHECK(napi_set_named_property(env, r, "all", all));
    return r;
}

/* ---- netlink worker (td_nl_worker.h) ---- */

static napi_value js_netlink_worker_start(napi_env env, napi_callback_info info)
{
    (void)info;
    return num(env, td_nlw_start());
}

static napi_value js_netlink_worker_submit(napi_env env, napi_callback_info info)
{
    int32_t fd, tag;
    void *data;
    size_t len;
    GET_ARGS(3);
    if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) || !arg_int(env, argv[2], &tag))
        return NULL;
    return num(env, td_nlw_submit(fd, data, len, (uint32_t)tag));
}

/* [tag, result, reply (a Buffer) or null, ...] of the completions waiting, in submit order. */
static napi_value js_netlink_worker_take(napi_env env, napi_callback_info info)
{
    static struct td_nlw_done done[16];
    napi_value all, v;
    uint32_t k = 0;
    int n, i;
    (void)info;
    CHECK(napi_create_array(env, &all));
    while ((n = td_nlw_take(done, sizeof done / sizeof done[0])) > 0) {
        for (i = 0; i < n; i++) {
            CHECK(napi_set_element(env, all, k++, num(env, (double)done[i].tag)));
            CHECK(napi_set_element(env, all, k++, num(env, done[i].result)));
            if (done[i].result >= 0)
                CHECK(napi_create_buffer_copy(env, (size_t)done[i].result, done[i].reply, NULL, &v));
            else
                CHECK(napi_get_null(env, &v));
            CHECK(napi_set_element(env, all, k++, v));
        }
    }
    return all;
}

static napi_value js_netlink_worker_pending(napi_env env, napi_callback_info info)
{
    (void)info;
    return num(env, td_nlw_pending());
}

/* ---- limits and buffers ---- */

static napi_value js_set_recv_buffer(napi_env env, napi_callback_info info)
{
    int32_t fd, bytes;
    GET_ARGS(2);
    if (!arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &bytes))
        return NULL;
    return num(env, td_set_recv_buffer(fd, bytes));
}

static napi_value js_set_rx_timestamps(napi_env env, napi_callback_info info)
{
    int32_t fd;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    return num(env, td_rx_timestamps(fd));
}

static double limit_value(uint64_t v) { return v == UINT64_MAX ? (double)INFINITY : (double)v; }

static napi_value js_raise_fd_limit(napi_env env, napi_callback_info info)
{
    uint64_t soft = 0, hard = 0;
    napi_value r;
    int rc;
    (void)info;
    if ((rc = td_raise_fd_limit(&soft, &hard)) < 0)
        return num(env, rc);
    CHECK(napi_create_object(env, &r));
    CHECK(napi_set_named_property(env, r, "soft", num(env, limit_value(soft))));
    CHECK(napi_set_named_property(env, r, "hard", num(env, limit_value(hard))));
    return r;
}

/* ---- misc ---- */

static napi_value js_syslog(napi_env env, napi_callback_info info)
{
    int32_t prio;
    char *ident, *msg;
    GET_ARGS(3);
    if (!arg_int(env, argv[0], &prio) || !(ident = arg_string(env, argv[1])))
        return NULL;
    if (!(msg = arg_string(env, argv[2]))) {
        free(ident);
        return NULL;
    }
    td_syslog(prio, ident, msg);
    free(ident);
    free(msg);
    return NULL;
}

static napi_value js_strerror(napi_env env, napi_callback_info info)
{
    int32_t e;
    napi_value s;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &e))
        return NULL;
    /* Callers hold -errno results; accept either sign. */
    CHECK(napi_create_string_utf8(env, strerror(e < 0 ? -e : e), NAPI_AUTO_LENGTH, &s));
    return s;
}

static napi_value errno_object(napi_env env)
{
    napi_value obj;
    size_t i;
    CHECK(napi_create_object(env, &obj));
    for (i = 0; i < td_errno_count; i++)
        CHECK(napi_set_named_property(env, obj, td_errno_table[i].name, num(env, td_errno_table[i].value)));
    return obj;
}

/* Signal numbers that differ between platforms (SIGUSR1 is 16 on MIPS, 10 on x86 and ARM). */
static napi_value signals_object(napi_env env)
{
    napi_value obj;
    CHECK(napi_create_object(env, &obj));
    CHECK(napi_set_named_property(env, obj, "SIGUSR1", num(env, SIGUSR1)));
    return obj;
}

#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }

static napi_value js_sd_notify(napi_env env, napi_callback_info info);
static napi_value js_datagram_reader(napi_env env, napi_callback_info info);
static napi_value js_watch_datagrams(napi_env env, napi_callback_info info);
static napi_value js_send_batch(napi_env env, napi_callback_info info);
static napi_value js_loop_now(napi_env env, napi_callback_info info);
static napi_value js_hrtime_ms(napi_env env, napi_callback_info info);
static napi_value js_deadline_timer(napi_env env, napi_callback_info info);
static napi_value js_deadline_timer_start(napi_env env, napi_callback_info info);
static napi_value js_deadline_timer_stop(napi_env env, napi_callback_info info);

static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor props[] = {
        FN("udpSocket", js_udp_socket), FN("setReusePort", js_set_reuseport),
        FN("bindToDevice", js_bind_to_device), FN("setPmtuProbe", js_set_pmtu_probe),
        FN("bind", js_bind), FN("connect", js_connect), FN("localPort", js_local_port),
        FN("send", js_send), FN("sendTo", js_send_to), FN("recvFrom", js_recv_from),
        FN("close", js_close), FN("netlinkSocket", js_netlink_socket),
        FN("netlinkSend", js_netlink_send), FN("netlinkRecv", js_netlink_recv),
        FN("netlinkWorkerStart", js_netlink_worker_start), FN("netlinkWorkerSubmit", js_netlink_worker_submit),
        FN("netlinkWorkerTake", js_netlink_worker_take), FN("netlinkWorkerPending", js_netlink_worker_pending),
        FN("spawn", js_spawn), FN("read", js_read), FN("waitPid", js_wait_pid), FN("kill", js_kill),
        FN("reniceGroup", js_renice_group),
        FN("pidWatch", js_pid_watch), FN("setRecvBuffer", js_set_recv_buffer),
        FN("setRxTimestamps", js_set_rx_timestamps),
        FN("raiseFdLimit", js_raise_fd_limit),
#ifdef TD_LEGACY_FORK_SPAWN
        FN("spawnFork", js_spawn_fork),
#endif
        FN("resolveStart", js_resolve_start), FN("resolveFinish", js_resolve_finish),
        FN("syslog", js_syslog), FN("strerror", js_strerror),
        FN("watch", js_watch), FN("unwatch", js_unwatch),
        FN("sdNotify", js_sd_notify),
        FN("datagramReader", js_datagram_reader), FN("watchDatagrams", js_watch_datagrams),
        FN("sendBatch", js_send_batch),
        FN("loopNow", js_loop_now), FN("hrtimeMs", js_hrtime_ms),
        FN("deadlineTimer", js_deadline_timer), FN("deadlineTimerStart", js_deadline_timer_start),
        FN("deadlineTimerStop", js_deadline_timer_stop),
        { "errno", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL },
        { "signals", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL },
    };
    struct addon *a;
    napi_value err_obj = errno_object(env), sig_obj = signals_object(env);
    if (!err_obj || !sig_obj)
        return NULL;
    props[sizeof props / sizeof props[0] - 2].value = err_obj;
    props[sizeof props / sizeof props[0] - 1].value = sig_obj;
    a = calloc(1, sizeof *a);
    if (!a) {
        napi_throw_error(env, NULL, "tdnative: out of memory");
        return NULL;
    }
    CHECK(napi_set_instance_data(env, a, on_addon_finalize, NULL));
    CHECK(napi_add_env_cleanup_hook(env, on_env_cleanup, a));
    CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
    return exports;
}

NAPI_MODULE(tdnative, init)

/* sdNotify(state): td_sd_notify. */
static napi_value js_sd_notify(napi_env env, napi_callback_info info)
{
    char *state;
    int r;
    GET_ARGS(1);
    if (!(state = arg_string(env, argv[0])))
        return NULL;
    r = td_sd_notify(state);
    free(state);
    return num(env, r);
}

/* ---- batched datagram reading (watchDatagrams + datagramReader) ----
 * The readiness callbacks of all watched datagram sockets only queue their watcher; a check
 * handle (libuv runs it right after the poll phase of the same loop turn) then reads every
 * queued socket with td_recv_batch into the shared buffers and calls the JS callback once with
 * the count: one JS entry per loop turn instead of one per socket and datagram, and no recvfrom
 * that only returns EAGAIN. Meta words per datagram: see TD_DGRAM_META. */

#define TD_DGRAM_META 9 /* fd, length or -errno, flags (1 = truncated) | family << 8, port, address (16 bytes),
                         ms in the receive queue (-1: unknown) */

/* The deferred set (watchDatagrams(fd, true): the broker's tunnel sockets): their datagrams
 * (keepalives, PMTU probes, the odd ERROR) need no answer within milliseconds, and in a real
 * fleet they arrive one by one, each of them a wake-up of the whole process. So they are not
 * polled each on its own: they sit in one epoll set of the reader's, whose fd is polled by
 * libuv. Its first readiness is read at once; then the set's poll is stopped and a timer reads
 * whatever became readable meanwhile at most every defer_ms, until a timer finds nothing and
 * the poll is resumed. Steady traffic costs one wake-up per defer_ms however many sockets it
 * comes on; a lone datagram is read as it arrives. */
#define TD_DEFER_EVENTS 256
/* Most batches one read of the deferred set passes to JS before the loop gets a turn */
#define TD_DEFER_ROUNDS 64

struct dgram_reader {
    napi_env env;
    napi_ref cb, buf_ref, meta_ref;
    napi_async_context actx;
    uint8_t *buf;
    int32_t *meta;
    size_t slot;
    uint32_t slots, per_fd;
    uv_check_t check;
    bool check_active, closing;
    struct watcher *ready;
    /* the deferred set: epoll fd (-1: none yet; its handles are initialised with it), its poll
     * and the timer between reads */
    int defer_fd;
    uint32_t defer_ms, deferred_count;
    uv_poll_t defer_poll;
    uv_timer_t defer_timer;
    uint64_t defer_last_read;
    /* the last batch was full with sockets still queued (what they hold stays in the kernel) */
    bool overflow;
    int open_handles; /* freed when the last of its libuv handles is closed */
};

static void dgram_reader_release(struct dgram_reader *r)
{
    js_callback_clear(r->env, &r->cb, &r->actx);
    if (r->buf_ref)
        napi_delete_reference(r->env, r->buf_ref);
    if (r->meta_ref)
        napi_delete_reference(r->env, r->meta_ref);
    r->buf_ref = r->meta_ref = NULL;
}

static void on_reader_closed(uv_handle_t *h)
{
    struct dgram_reader *r = h->data;
    if (--r->open_handles == 0)
        free(r);
}

static void dgram_reader_close(struct addon *a)
{
    struct dgram_reader *r = a->reader;
    if (!r || r->closing)
        return;
    r->closing = true;
    r->ready = NULL;
    uv_check_stop(&r->check);
    if (r->defer_fd >= 0) {
        uv_poll_stop(&r->defer_poll);
        uv_timer_stop(&r->defer_timer);
        r->defer_poll.data = r->defer_timer.data = r;
        uv_close((uv_handle_t *)&r->defer_poll, on_reader_closed);
        uv_close((uv_handle_t *)&r->defer_timer, on_reader_closed);
        close(r->defer_fd);
        r->defer_fd = -1;
    }
    r->check.data = r;
    uv_close((uv_handle_t *)&r->check, on_reader_closed);
    a->reader = NULL;
}

static void dgram_unqueue(struct addon *a, struct watcher *w)
{
    struct watcher **pp;
    if (!w->queued || !a->reader)
        return;
    for (pp = &a->reader->ready; *pp; pp = &(*pp)->ready_next)
        if (*pp == w) {
            *pp = w->ready_next;
            break;
        }
    w->queued = false;
}

static void on_dgram_check(uv_check_t *h)
{
    struct dgram_reader *r = (struct dgram_reader *)((char *)h - offsetof(struct dgram_reader, check));
    struct td_dgram dg[TD_RECV_BATCH_MAX];
    uint32_t count = 0, batches = 0;
    struct watcher *w;
    int n, i;
    uv_check_stop(h);
    r->check_active = false;
    r->overflow = false;
    while ((w = r->ready) != NULL) {
        uint32_t room = r->slots - count;
        if (room == 0) {
            /* a full batch with sockets still queued: JS takes it (it reads the buffers before it
             * returns) and the next batch reuses them. Leaving the rest to the next loop turn
             * passed one batch per turn and had epoll report the others again and again: 10,000
             * busy client sockets fell behind that way. After TD_DEFER_ROUNDS batches the loop
             * gets its turn: what is left stays queued in the kernel and the poll (a deferred
             * socket: the next read of the set, see defer_read) reports it again. */
            if (++batches >= TD_DEFER_ROUNDS) {
                r->overflow = true;
                break;
            }
            call_js(r->env, r->actx, r->cb, true, count);
            count = 0;
            if (r->closing)
                return;
            continue; /* JS may have unwatched sockets: take the head of the queue again */
        }
        r->ready = w->ready_next;
        w->ready_next = NULL;
        w->queued = false;
        if (w->closing)
            continue;
        if (w->pending_err) {
            int32_t *m = r->meta + (size_t)count * TD_DGRAM_META;
            memset(m, 0, TD_DGRAM_META * sizeof *m);
            m[0] = w->fd;
            m[1] = -w->pending_err;
            m[8] = -1;
            w->pending_err = 0;
            count++;
            if (--room == 0)
                continue; /* the datagrams stay queued: the poll reports the socket again */
        }
        n = td_recv_batch(w->fd, r->buf + (size_t)count * r->slot, r->slot, room < r->per_fd ? room : r->per_fd, dg);
        if (n < 0) {
            int32_t *m = r->meta + (size_t)count * TD_DGRAM_META;
            memset(m, 0, TD_DGRAM_META * sizeof *m);
            m[0] = w->fd;
            m[1] = n;
            m[8] = -1;
            count++;
            continue;
        }
        for (i = 0; i < n; i++, count++) {
            int32_t *m = r->meta + (size_t)count * TD_DGRAM_META;
            m[0] = w->fd;
            m[1] = (int32_t)dg[i].len;
            m[2] = (dg[i].truncated ? 1 : 0) | (dg[i].family << 8);
            m[3] = dg[i].port;
            memcpy(&m[4], dg[i].addr, 16);
            m[8] = dg[i].queued_ms;
        }
    }
    /* sockets left queued are reported again by their polls (or the next read of the set) */
    while ((w = r->ready) != NULL) {
        r->ready = w->ready_next;
        w->ready_next = NULL;
        w->queued = false;
    }
    if (count == 0)
        return;
    call_js(r->env, r->actx, r->cb, true, count);
}

static void dgram_ready(struct watcher *w)
{
    struct addon *a = get_addon(w->env);
    struct dgram_reader *r = a ? a->reader : NULL;
    if (!r || r->closing || w->queued)
        return;
    w->queued = true;
    w->ready_next = r->ready;
    r->ready = w;
    if (!r->check_active) {
        r->check_active = true;
        uv_check_start(&r->check, on_dgram_check);
    }
}

/* Queues every socket of the deferred set that is readable now (epoll_wait without waiting;
 * level-triggered, so what a batch leaves unread is reported again): how many. */
static int defer_collect(struct dgram_reader *r)
{
    struct epoll_event ev[TD_DEFER_EVENTS];
    int n, i, total = 0;
    do {
        n = epoll_wait(r->defer_fd, ev, TD_DEFER_EVENTS, 0);
        for (i = 0; i < n; i++) {
            struct watcher *w = ev[i].data.ptr;
            if (!w->closing && !w->queued)
                dgram_ready(w);
        }
        total += n > 0 ? n : 0;
    } while (n == TD_DEFER_EVENTS && total < (int)r->slots); /* the batch holds r->slots at most */
    r->defer_last_read = uv_now(r->check.loop);
    return total;
}

/* Reads the deferred set now: queues what is readable and reads it, batch after batch while
 * one comes back full (more readable sockets than a batch holds: 10,000 tunnels' keepalives are
 * ~1,000 per 500 ms read, a batch 256), at most TD_DEFER_ROUNDS batches. How many sockets were
 * readable; r->overflow tells whether some were left for the next read. */
static int defer_read(struct dgram_reader *r)
{
    int n, total = 0, rounds = 0;
    do {
        n = defer_collect(r);
        total += n;
        if (r->ready)
            on_dgram_check(&r->check);
    } while ((r->overflow || n >= (int)r->slots) && ++rounds < TD_DEFER_ROUNDS && !r->closing);
    return total;
}

static void on_defer_timer(uv_timer_t *t);

/* defer_read with the timer for the next read armed: deferMs from now, or at the next loop turn
 * when a set larger than TD_DEFER_ROUNDS batches left sockets unread. Armed before the read, so
 * that the JS callback may stop it (unwatching the last socket, closing the reader). */
static int defer_read_rearm(struct dgram_reader *r)
{
    int n;
    uv_timer_start(&r->defer_timer, on_defer_timer, r->defer_ms, 0);
    n = defer_read(r);
    if (n > 0 && r->overflow && !r->closing)
        uv_timer_start(&r->defer_timer, on_defer_timer, 0, 0);
    return n;
}

static void on_defer_readable(uv_poll_t *h, int status, int events)
{
    struct dgram_reader *r = h->data;
    uint64_t now = uv_now(h->loop), due = r->defer_last_read + r->defer_ms;
    (void)status;
    (void)events;
    if (r->closing)
        return;
    /* from now on the timer reads the set; the poll stays stopped while it finds something */
    uv_poll_stop(h);
    if (now >= due)
        defer_read_rearm(r);
    else
        uv_timer_start(&r->defer_timer, on_defer_timer, due - now, 0);
}

static void on_defer_timer(uv_timer_t *t)
{
    struct dgram_reader *r = t->data;
    if (r->closing)
        return;
    /* read now, not in the check phase: an active check handle does not shorten the poll phase
     * that comes next (libuv waits there for the next timer), so queued sockets would wait for
     * another event */
    if (defer_read_rearm(r) > 0)
        return;
    uv_timer_stop(t);
    if (r->deferred_count > 0)
        (void)uv_poll_start(&r->defer_poll, UV_READABLE, on_defer_readable);
}

/* The reader's deferred set, created on first use: 0 or -errno. */
static int defer_init(struct dgram_reader *r)
{
    uv_loop_t *loop = r->check.loop;
    int rc;
    if (r->defer_fd >= 0)
        return 0;
    r->defer_fd = epoll_create1(EPOLL_CLOEXEC);
    if (r->defer_fd < 0)
        return -errno;
    if ((rc = uv_poll_init(loop, &r->defer_poll, r->defer_fd)) < 0) {
        close(r->defer_fd);
        r->defer_fd = -1;
        return rc;
    }
    uv_timer_init(loop, &r->defer_timer);
    /* like the check handle: they alone do not keep the process alive */
    uv_unref((uv_handle_t *)&r->defer_poll);
    uv_unref((uv_handle_t *)&r->defer_timer);
    r->defer_poll.data = r->defer_timer.data = r;
    r->open_handles += 2;
    return 0;
}

static int deferred_add(struct dgram_reader *r, struct watcher *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    int rc = defer_init(r);
    if (rc < 0)
        return rc;
    if (epoll_ctl(r->defer_fd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
        return -errno;
    w->deferred = true;
    r->deferred_count++;
    /* a socket added while the timer reads the set is read by the timer */
    if (!uv_is_active((uv_handle_t *)&r->defer_poll) && !uv_is_active((uv_handle_t *)&r->defer_timer))
        (void)uv_poll_start(&r->defer_poll, UV_READABLE, on_defer_readable);
    return 0;
}

static void deferred_remove(struct watcher *w)
{
    struct addon *a = get_addon(w->env);
    struct dgram_reader *r = a ? a->reader : NULL;
    w->deferred = false;
    if (!r || r->defer_fd < 0)
        return;
    (void)epoll_ctl(r->defer_fd, EPOLL_CTL_DEL, w->fd, NULL);
    if (r->deferred_count > 0 && --r->deferred_count == 0)
        uv_poll_stop(&r->defer_poll);
}

static bool typed_array_info(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length)
{
    bool is_ta = false;
    napi_typedarray_type type;
    return napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta &&
           napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) == napi_ok && type == want;
}

/* datagramReader(buf: Uint8Array, meta: Int32Array, slotSize, perFd, cb(count), deferMs = 0):
 * sets (or replaces) the reader of all watchDatagrams sockets. meta holds TD_DGRAM_META words
 * per slot; buf at least slots * slotSize bytes. deferMs: the least interval between reads of
 * the deferred set (0: deferred sockets are polled each on its own). 0 or -EINVAL. */
static napi_value js_datagram_reader(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    struct dgram_reader *r = a->reader;
    void *buf, *meta;
    size_t buf_len, meta_len;
    int32_t slot, per_fd, defer_ms = 0;
    napi_valuetype t;
    uv_loop_t *loop;
    GET_ARGS(5);
    if (argc >= 6 && (!arg_int(env, argv[5], &defer_ms) || defer_ms < 0 || defer_ms > 10000))
        return num(env, -EINVAL);
    if (!typed_array_info(env, argv[0], napi_uint8_array, &buf, &buf_len) ||
        !typed_array_info(env, argv[1], napi_int32_array, &meta, &meta_len))
        return type_error(env, "tdnative.datagramReader: expected a Uint8Array and an Int32Array");
    if (!arg_int(env, argv[2], &slot) || !arg_int(env, argv[3], &per_fd))
        return NULL;
    CHECK(napi_typeof(env, argv[4], &t));
    if (t != napi_function)
        return type_error(env, "tdnative.datagramReader: expected a callback function");
    if (slot <= 0 || per_fd <= 0 || meta_len / TD_DGRAM_META == 0 || buf_len / (size_t)slot < meta_len / TD_DGRAM_META)
        return num(env, -EINVAL);
    if (!r) {
        CHECK(napi_get_uv_event_loop(env, &loop));
        r = calloc(1, sizeof *r);
        if (!r)
            return num(env, -ENOMEM);
        uv_check_init(loop, &r->check);
        uv_unref((uv_handle_t *)&r->check);
        r->env = env;
        r->defer_fd = -1;
        r->open_handles = 1;
        a->reader = r;
    }
    r->defer_ms = (uint32_t)defer_ms;
    dgram_reader_release(r);
    r->buf = buf;
    r->meta = meta;
    r->slot = (size_t)slot;
    r->slots = (uint32_t)(meta_len / TD_DGRAM_META);
    r->per_fd = (uint32_t)(per_fd > TD_RECV_BATCH_MAX ? TD_RECV_BATCH_MAX : per_fd);
    CHECK(napi_create_reference(env, argv[0], 1, &r->buf_ref));
    CHECK(napi_create_reference(env, argv[1], 1, &r->meta_ref));
    if (!js_callback_set(env, argv[4], "tdnative.datagramReader", &r->cb, &r->actx)) {
        throw_last(env);
        return NULL;
    }
    return num(env, 0);
}

/* watchDatagrams(fd, deferred = false): fd's datagrams go to the datagramReader callback (which
 * must be set). deferred: fd joins the deferred set (read at most every deferMs, see
 * TD_DEFER_EVENTS) when the reader has a deferMs. Replaces a watch(fd, cb). unwatch(fd) and
 * close(fd) stop it. 0 or -errno. */
static napi_value js_watch_datagrams(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    struct watcher *w;
    int32_t fd;
    bool deferred = false;
    int rc;
    GET_ARGS(1);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    if (argc >= 2)
        CHECK(napi_get_value_bool(env, argv[1], &deferred));
    if (!a->reader)
        return num(env, -EINVAL);
    deferred = deferred && a->reader->defer_ms > 0;
    if ((w = find_watcher(a, fd)) != NULL) {
        if (w->dgram && w->deferred == deferred)
            return num(env, 0);
        stop_watcher(w);
    }
    if ((rc = watcher_new(env, fd, &w)) < 0)
        return num(env, rc);
    w->dgram = true;
    if (!deferred)
        return num(env, watcher_start(a, w));
    w->next = a->watchers;
    a->watchers = w;
    if ((rc = deferred_add(a->reader, w)) < 0)
        stop_watcher(w);
    return num(env, rc);
}

/* sendBatch(fd, buf: Uint8Array, lens: Int32Array, count[, dests: Uint8Array]): td_send_batch
 * of the first count datagrams (lens[i] bytes each, consecutive in buf) on a connected socket,
 * or with dests (count * TD_DEST_BYTES) td_send_batch_to on an unconnected one. Sent count or
 * -errno; -EINVAL when the lengths do not fit buf or the destinations dests. */
static napi_value js_send_batch(napi_env env, napi_callback_info info)
{
    void *buf, *lens, *dests = NULL;
    size_t buf_len, lens_len, dests_len = 0, total = 0;
    napi_valuetype t5 = napi_undefined;
    int32_t fd, count, i;
    GET_ARGS(4);
    if (!arg_int(env, argv[0], &fd))
        return NULL;
    if (!typed_array_info(env, argv[1], napi_uint8_array, &buf, &buf_len) ||
        !typed_array_info(env, argv[2], napi_int32_array, &lens, &lens_len))
        return type_error(env, "tdnative.sendBatch: expected a Uint8Array and an Int32Array");
    if (!arg_int(env, argv[3], &count))
        return NULL;
    if (count <= 0 || count > TD_SEND_BATCH_MAX || (size_t)count > lens_len)
        return num(env, -EINVAL);
    for (i = 0; i < count; i++) {
        int32_t l = ((int32_t *)lens)[i];
        if (l < 0)
            return num(env, -EINVAL);
        total += (size_t)l;
    }
    if (total > buf_len)
        return num(env, -EINVAL);
    if (argc > 4)
        CHECK(napi_typeof(env, argv[4], &t5));
    if (t5 != napi_undefined) {
        if (!typed_array_info(env, argv[4], napi_uint8_array, &dests, &dests_len))
            return type_error(env, "tdnative.sendBatch: expected a Uint8Array of destinations");
        if (dests_len < (size_t)count * TD_DEST_BYTES)
            return num(env, -EINVAL);
        return num(env, td_send_batch_to(fd, buf, (const uint32_t *)lens, dests, (unsigned)count));
    }
    return num(env, td_send_batch(fd, buf, (const uint32_t *)lens, (unsigned)count));
}

/* ---- the loop's clock and one re-armable timer ----
 * Under a hypervisor without a vDSO clock (the test VM's HPET) every clock_gettime is a
 * syscall, and Node's setTimeout reads the clock on each call (uv_update_time) and cannot take
 * back a libuv timer it armed (clearTimeout leaves it to fire and find nothing). The broker's
 * deadline timer is re-armed after most wake-ups, so it gets one uv timer of its own, armed
 * relative to the loop time libuv read when it woke (uv_now), which is also the clock reading
 * the broker needs for the turn. */
struct deadline_timer {
    napi_env env;
    napi_ref cb;
    napi_async_context actx;
    uv_timer_t timer;
};

/* loopNow(): uv_now, the loop time in ms as libuv read it at this turn's wake-up (no clock
 * read). */
static napi_value js_loop_now(napi_env env, napi_callback_info info)
{
    uv_loop_t *loop;
    napi_value v;
    (void)info;
    CHECK(napi_get_uv_event_loop(env, &loop));
    CHECK(napi_create_double(env, (double)uv_now(loop), &v));
    return v;
}

/* hrtimeMs(): uv_hrtime in ms (a clock read): the clock uv_now comes from, so JS can map loop
 * times onto performance.now(). */
static napi_value js_hrtime_ms(napi_env env, napi_callback_info info)
{
    napi_value v;
    (void)info;
    CHECK(napi_create_double(env, (double)uv_hrtime() / 1e6, &v));
    return v;
}

static void on_deadline_timer(uv_timer_t *t)
{
    struct deadline_timer *d = t->data;
    call_js(d->env, d->actx, d->cb, false, 0);
}

static void on_deadline_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deadline_timer_close(struct addon *a)
{
    struct deadline_timer *d = a->timer;
    if (!d)
        return;
    a->timer = NULL;
    uv_timer_stop(&d->timer);
    js_callback_clear(d->env, &d->cb, &d->actx);
    uv_close((uv_handle_t *)&d->timer, on_deadline_timer_closed);
}

/* deadlineTimer(cb): the addon's one re-armable timer calls cb (a second call replaces cb);
 * stopped until deadlineTimerStart. Like setTimeout, an armed timer keeps the process alive.
 * 0 or -errno. */
static napi_value js_deadline_timer(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    struct deadline_timer *d;
    napi_valuetype t;
    uv_loop_t *loop;
    GET_ARGS(1);
    CHECK(napi_typeof(env, argv[0], &t));
    if (t != napi_function)
        return type_error(env, "tdnative.deadlineTimer: expected a callback function");
    if (!a)
        return num(env, -EINVAL);
    if (!(d = a->timer)) {
        CHECK(napi_get_uv_event_loop(env, &loop));
        if (!(d = calloc(1, sizeof *d)))
            return num(env, -ENOMEM);
        uv_timer_init(loop, &d->timer);
        d->timer.data = d;
        d->env = env;
        a->timer = d;
    }
    if (!js_callback_set(env, argv[0], "tdnative.deadlineTimer", &d->cb, &d->actx)) {
        throw_last(env);
        return NULL;
    }
    return num(env, 0);
}

/* deadlineTimerStart(ms): (re)arms the timer ms after the loop time (loopNow), replacing an
 * armed time. 0, or -EINVAL without deadlineTimer or for a negative or non-finite ms. */
static napi_value js_deadline_timer_start(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    double ms;
    GET_ARGS(1);
    if (napi_get_value_double(env, argv[0], &ms) != napi_ok)
        return type_error(env, "tdnative.deadlineTimerStart: expected a number");
    if (!a || !a->timer || !(ms >= 0) || ms > 1e12)
        return num(env, -EINVAL);
    uv_timer_start(&a->timer->timer, on_deadline_timer, (uint64_t)ceil(ms), 0);
    return num(env, 0);
}

/* deadlineTimerStop(): disarms it (it does not fire for the time it had). 0. */
static napi_value js_deadline_timer_stop(napi_env env, napi_callback_info info)
{
    struct addon *a = get_addon(env);
    (void)info;
    if (a && a->timer)
        uv_timer_stop(&a->timer->timer);
    return num(env, 0);
}
