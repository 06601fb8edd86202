/* QuickJS (Bellard 2025-04-26) binding of td_core: the C module "tdnative", exposing exactly the
 * Native interface of src/native.ts as named exports.
 * fd readiness comes from the QuickJS `os` module (os.setReadHandler), not from here. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "quickjs.h"
#include "td_core.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))

/* ---- argument helpers: wrong types throw TypeError, everything else returns -errno ---- */

static int arg_int(JSContext *ctx, JSValueConst v, int32_t *out)
{
    if (!JS_IsNumber(v)) {
        JS_ThrowTypeError(ctx, "tdnative: expected a number");
        return -1;
    }
    return JS_ToInt32(ctx, out, v);
}

/* Returns a string to release with JS_FreeCString, or NULL with an exception pending. */
static const char *arg_string(JSContext *ctx, JSValueConst v)
{
    if (!JS_IsString(v)) {
        JS_ThrowTypeError(ctx, "tdnative: expected a string");
        return NULL;
    }
    return JS_ToCString(ctx, v);
}

/* Byte view of a Uint8Array (or any 1-byte typed array). The pointer stays valid until JS
 * runs again, which none of our calls do. */
static int arg_bytes(JSContext *ctx, JSValueConst v, uint8_t **data, size_t *len)
{
    size_t off = 0, blen = 0, bpe = 0, size = 0;
    JSValue ab = JS_GetTypedArrayBuffer(ctx, v, &off, &blen, &bpe);
    uint8_t *p;
    if (JS_IsException(ab))
        return -1;
    p = JS_GetArrayBuffer(ctx, &size, ab);
    JS_FreeValue(ctx, ab);
    if (bpe != 1) {
        JS_ThrowTypeError(ctx, "tdnative: expected a Uint8Array");
        return -1;
    }
    if (!p) {
        if (blen == 0) { /* an empty buffer may have no storage at all */
            static uint8_t empty;
            *data = &empty;
            *len = 0;
            return 0;
        }
        return -1; /* JS_GetArrayBuffer threw */
    }
    if (off > size || blen > size - off) {
        JS_ThrowRangeError(ctx, "tdnative: typed array out of bounds");
        return -1;
    }
    *data = p + off;
    *len = blen;
    return 0;
}

static JSValue num(JSContext *ctx, int64_t v) { return JS_NewInt64(ctx, v); }

/* Sets ip, port and family of ep on obj. */
static int set_endpoint(JSContext *ctx, JSValueConst obj, const struct td_endpoint *ep)
{
    if (JS_SetPropertyStr(ctx, obj, "ip", JS_NewString(ctx, ep->ip)) < 0 ||
        JS_SetPropertyStr(ctx, obj, "port", JS_NewInt32(ctx, ep->port)) < 0 ||
        JS_SetPropertyStr(ctx, obj, "family", JS_NewInt32(ctx, ep->family)) < 0)
        return -1;
    return 0;
}

/* ---- UDP ---- */

/* udpSocket(family?: 4 | 6): 4 when absent or undefined. */
static JSValue js_udp_socket(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t family = 4;
    (void)this_val; (void)argc;
    if (!JS_IsUndefined(argv[0]) && arg_int(ctx, argv[0], &family))
        return JS_EXCEPTION;
    return num(ctx, td_udp_socket(family));
}

#define FD_ONLY(jsname, cfunc)                                                              \
    static JSValue jsname(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) \
    {                                                                                       \
        int32_t fd;                                                                         \
        (void)this_val; (void)argc;                                                         \
        if (arg_int(ctx, argv[0], &fd))                                                     \
            return JS_EXCEPTION;                                                            \
        return num(ctx, cfunc(fd));                                                         \
    }

FD_ONLY(js_set_reuseport, td_set_reuseport)
FD_ONLY(js_set_pmtu_probe, td_set_pmtu_probe)
FD_ONLY(js_local_port, td_local_port)
FD_ONLY(js_netlink_socket, td_netlink_socket)

static JSValue js_bind_to_device(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t fd;
    const char *dev;
    int rc;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &fd) || !(dev = arg_string(ctx, argv[1])))
        return JS_EXCEPTION;
    rc = td_bind_to_device(fd, dev);
    JS_FreeCString(ctx, dev);
    return num(ctx, rc);
}

static JSValue bind_or_connect(JSContext *ctx, JSValueConst *argv, int (*fn)(int, const char *, uint16_t))
{
    int32_t fd, port;
    const char *ip;
    int rc;
    if (arg_int(ctx, argv[0], &fd) || arg_int(ctx, argv[2], &port) || !(ip = arg_string(ctx, argv[1])))
        return JS_EXCEPTION;
    rc = (port >= 0 && port <= 65535) ? fn(fd, ip, (uint16_t)port) : -EINVAL;
    JS_FreeCString(ctx, ip);
    return num(ctx, rc);
}

static JSValue js_bind(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    return bind_or_connect(ctx, argv, td_bind);
}

static JSValue js_connect(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    return bind_or_connect(ctx, argv, td_connect);
}

/* fd + bytes: send, netlinkSend, netlinkRecv, read */
#define FD_BYTES(jsname, cfunc)                                                             \
    static JSValue jsname(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) \
    {                                                                                       \
        int32_t fd;                                                                         \
        uint8_t *data;                                                                      \
        size_t len;                                                                         \
        (void)this_val; (void)argc;                                                         \
        if (arg_int(ctx, argv[0], &fd) || arg_bytes(ctx, argv[1], &data, &len))             \
            return JS_EXCEPTION;                                                            \
        return num(ctx, cfunc(fd, data, len));                                              \
    }

FD_BYTES(js_send, td_send)
FD_BYTES(js_netlink_send, td_netlink_send)
FD_BYTES(js_netlink_recv, td_netlink_recv)
FD_BYTES(js_read, td_read)

static JSValue js_send_to(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t fd, port;
    uint8_t *data;
    size_t len;
    const char *ip;
    ssize_t rc;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &fd) || arg_int(ctx, argv[3], &port) || !(ip = arg_string(ctx, argv[2])))
        return JS_EXCEPTION;
    /* Bytes last: nothing that can run JS comes after taking the pointer. */
    if (arg_bytes(ctx, argv[1], &data, &len)) {
        JS_FreeCString(ctx, ip);
        return JS_EXCEPTION;
    }
    rc = (port >= 0 && port <= 65535) ? td_sendto(fd, data, len, ip, (uint16_t)port) : -EINVAL;
    JS_FreeCString(ctx, ip);
    return num(ctx, rc);
}

static JSValue js_recv_from(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t fd;
    uint8_t *data;
    size_t len;
    struct td_endpoint from;
    ssize_t n;
    (void)this_val; (void)argc;
    if (!JS_IsObject(argv[2]))
        return JS_ThrowTypeError(ctx, "tdnative.recvFrom: expected an Endpoint object");
    if (arg_int(ctx, argv[0], &fd) || arg_bytes(ctx, argv[1], &data, &len))
        return JS_EXCEPTION;
    n = td_recvfrom(fd, data, len, &from);
    if (n >= 0 && set_endpoint(ctx, argv[2], &from) < 0)
        return JS_EXCEPTION;
    return num(ctx, n);
}

FD_ONLY(js_close, td_close)

/* ---- processes ---- */

static JSValue js_spawn(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *path = NULL;
    const char **cargv = NULL;
    uint32_t nargs = 0, i, filled = 0;
    JSValue lenv, result = JS_EXCEPTION, obj;
    int out_fd = -1, rc;
    size_t bytes = 0;
    pid_t pid;
    (void)this_val; (void)argc;
    if (!JS_IsArray(ctx, argv[1]))
        return JS_ThrowTypeError(ctx, "tdnative.spawn: args must be an array of strings");
    if (!JS_IsBool(argv[2]))
        return JS_ThrowTypeError(ctx, "tdnative.spawn: captureOutput must be a boolean");
    lenv = JS_GetPropertyStr(ctx, argv[1], "length");
    if (JS_ToUint32(ctx, &nargs, lenv)) {
        JS_FreeValue(ctx, lenv);
        return JS_EXCEPTION;
    }
    JS_FreeValue(ctx, lenv);
    if ((rc = td_argv_size(nargs, sizeof *cargv, &bytes)) < 0)
        return num(ctx, rc);
    if (!(path = arg_string(ctx, argv[0])))
        return JS_EXCEPTION;
    cargv = calloc(1, bytes);
    if (!cargv) {
        JS_FreeCString(ctx, path);
        return num(ctx, -ENOMEM);
    }
    cargv[0] = path;
    for (i = 0; i < nargs; i++, filled++) {
        JSValue item = JS_GetPropertyUint32(ctx, argv[1], i);
        cargv[i + 1] = JS_IsException(item) ? NULL : arg_string(ctx, item);
        JS_FreeValue(ctx, item);
        if (!cargv[i + 1])
            goto out;
    }
    pid = td_spawn(path, (char *const *)cargv, JS_ToBool(ctx, argv[2]), &out_fd);
    if (pid < 0) {
        result = num(ctx, pid);
        goto out;
    }
    obj = JS_NewObject(ctx);
    if (JS_IsException(obj) ||
        JS_SetPropertyStr(ctx, obj, "pid", JS_NewInt32(ctx, pid)) < 0 ||
        JS_SetPropertyStr(ctx, obj, "outFd", JS_NewInt32(ctx, out_fd)) < 0) {
        JS_FreeValue(ctx, obj);
        goto out; /* the child runs on; the caller sees the exception (out of memory) */
    }
    result = obj;
out:
    for (i = 0; i < filled; i++)
        JS_FreeCString(ctx, cargv[i + 1]);
    free(cargv);
    JS_FreeCString(ctx, path);
    return result;
}

static JSValue js_wait_pid(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t pid;
    int code = 0, rc;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &pid))
        return JS_EXCEPTION;
    rc = td_wait_pid(pid, &code);
    if (rc == 0)
        return JS_NULL;
    return num(ctx, rc < 0 ? rc : code);
}

/* (pid, int) -> int calls: kill(pid, signal), renice of a process group. */
#define PID_INT(jsname, cfunc)                                                                  \
    static JSValue jsname(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) \
    {                                                                                       \
        int32_t pid, v;                                                                     \
        (void)this_val; (void)argc;                                                         \
        if (arg_int(ctx, argv[0], &pid) || arg_int(ctx, argv[1], &v))                       \
            return JS_EXCEPTION;                                                            \
        return num(ctx, cfunc(pid, v));                                                     \
    }

PID_INT(js_kill, td_kill)
PID_INT(js_renice_group, td_renice_group)

/* ---- resolver ---- */

static JSValue js_resolve_start(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *host, *service;
    int rc;
    (void)this_val; (void)argc;
    if (!(host = arg_string(ctx, argv[0])))
        return JS_EXCEPTION;
    if (!(service = arg_string(ctx, argv[1]))) {
        JS_FreeCString(ctx, host);
        return JS_EXCEPTION;
    }
    rc = td_resolve_start(host, service);
    JS_FreeCString(ctx, host);
    JS_FreeCString(ctx, service);
    return num(ctx, rc);
}

static JSValue new_endpoint(JSContext *ctx, const struct td_endpoint *ep)
{
    JSValue obj = JS_NewObject(ctx);
    if (JS_IsException(obj) || set_endpoint(ctx, obj, ep) < 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

/* The first IPv4 address (what callers of the IPv4-only resolver got; else the first address),
 * plus `all`: every address in getaddrinfo's order. */
static JSValue js_resolve_finish(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    struct td_endpoint addrs[TD_RESOLVE_MAX_ADDRS];
    int32_t fd;
    int n, i, first = 0;
    JSValue obj, all;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &fd))
        return JS_EXCEPTION;
    n = td_resolve_finish(fd, addrs, TD_RESOLVE_MAX_ADDRS);
    if (n < 0)
        return num(ctx, n);
    while (first < n && addrs[first].family != 4)
        first++;
    obj = new_endpoint(ctx, &addrs[first < n ? first : 0]);
    if (JS_IsException(obj))
        return obj;
    all = JS_NewArray(ctx);
    if (JS_IsException(all)) {
        JS_FreeValue(ctx, obj);
        return all;
    }
    for (i = 0; i < n; i++) {
        JSValue item = new_endpoint(ctx, &addrs[i]);
        if (JS_IsException(item) || JS_SetPropertyUint32(ctx, all, (uint32_t)i, item) < 0) {
            JS_FreeValue(ctx, all);
            JS_FreeValue(ctx, obj);
            return JS_EXCEPTION;
        }
    }
    if (JS_SetPropertyStr(ctx, obj, "all", all) < 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

FD_ONLY(js_pid_watch, td_pid_watch)

/* ---- limits and buffers ---- */

static JSValue js_set_recv_buffer(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t fd, bytes;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &fd) || arg_int(ctx, argv[1], &bytes))
        return JS_EXCEPTION;
    return num(ctx, td_set_recv_buffer(fd, bytes));
}

static JSValue limit_value(JSContext *ctx, uint64_t v)
{
    return v == UINT64_MAX ? JS_NewFloat64(ctx, (double)INFINITY) : JS_NewFloat64(ctx, (double)v);
}

static JSValue js_raise_fd_limit(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    uint64_t soft = 0, hard = 0;
    JSValue obj;
    int rc;
    (void)this_val; (void)argc; (void)argv;
    if ((rc = td_raise_fd_limit(&soft, &hard)) < 0)
        return num(ctx, rc);
    obj = JS_NewObject(ctx);
    if (JS_IsException(obj) || JS_SetPropertyStr(ctx, obj, "soft", limit_value(ctx, soft)) < 0 ||
        JS_SetPropertyStr(ctx, obj, "hard", limit_value(ctx, hard)) < 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

/* ---- misc ---- */

static JSValue js_syslog(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t prio;
    const char *ident, *msg;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &prio) || !(ident = arg_string(ctx, argv[1])))
        return JS_EXCEPTION;
    if (!(msg = arg_string(ctx, argv[2]))) {
        JS_FreeCString(ctx, ident);
        return JS_EXCEPTION;
    }
    td_syslog(prio, ident, msg);
    JS_FreeCString(ctx, ident);
    JS_FreeCString(ctx, msg);
    return JS_UNDEFINED;
}

static JSValue js_strerror(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t e;
    (void)this_val; (void)argc;
    if (arg_int(ctx, argv[0], &e))
        return JS_EXCEPTION;
    /* Callers hold -errno results; accept either sign. */
    return JS_NewString(ctx, strerror(e < 0 ? -e : e));
}

/* Signal numbers that differ between platforms (SIGUSR1 is 16 on MIPS, 10 on x86 and ARM). */
static const JSCFunctionListEntry td_signals[] = {
    JS_PROP_INT32_DEF("SIGUSR1", SIGUSR1, JS_PROP_ENUMERABLE),
};

static const JSCFunctionListEntry td_funcs[] = {
    JS_CFUNC_DEF("udpSocket", 1, js_udp_socket),
    JS_CFUNC_DEF("setReusePort", 1, js_set_reuseport),
    JS_CFUNC_DEF("bindToDevice", 2, js_bind_to_device),
    JS_CFUNC_DEF("setPmtuProbe", 1, js_set_pmtu_probe),
    JS_CFUNC_DEF("bind", 3, js_bind),
    JS_CFUNC_DEF("connect", 3, js_connect),
    JS_CFUNC_DEF("localPort", 1, js_local_port),
    JS_CFUNC_DEF("send", 2, js_send),
    JS_CFUNC_DEF("sendTo", 4, js_send_to),
    JS_CFUNC_DEF("recvFrom", 3, js_recv_from),
    JS_CFUNC_DEF("close", 1, js_close),
    JS_CFUNC_DEF("netlinkSocket", 1, js_netlink_socket),
    JS_CFUNC_DEF("netlinkSend", 2, js_netlink_send),
    JS_CFUNC_DEF("netlinkRecv", 2, js_netlink_recv),
    JS_CFUNC_DEF("spawn", 3, js_spawn),
    JS_CFUNC_DEF("read", 2, js_read),
    JS_CFUNC_DEF("waitPid", 1, js_wait_pid),
    JS_CFUNC_DEF("kill", 2, js_kill),
    JS_CFUNC_DEF("reniceGroup", 2, js_renice_group),
    JS_CFUNC_DEF("pidWatch", 1, js_pid_watch),
    JS_CFUNC_DEF("setRecvBuffer", 2, js_set_recv_buffer),
    JS_CFUNC_DEF("raiseFdLimit", 0, js_raise_fd_limit),
    JS_CFUNC_DEF("resolveStart", 2, js_resolve_start),
    JS_CFUNC_DEF("resolveFinish", 1, js_resolve_finish),
    JS_CFUNC_DEF("syslog", 3, js_syslog),
    JS_CFUNC_DEF("strerror", 1, js_strerror),
    JS_OBJECT_DEF("signals", td_signals, countof(td_signals), JS_PROP_ENUMERABLE),
};

/* QuickJS pads missing arguments with undefined up to the declared length, so argv[i] below
 * the length in td_funcs is always readable (and fails the type checks when absent). */
/* `errno` comes from td_core's table (the one source of names), so it is built at run time. */
static JSValue errno_object(JSContext *ctx)
{
    JSValue obj = JS_NewObject(ctx);
    size_t i;
    if (JS_IsException(obj))
        return obj;
    for (i = 0; i < td_errno_count; i++) {
        if (JS_SetPropertyStr(ctx, obj, td_errno_table[i].name, JS_NewInt32(ctx, td_errno_table[i].value)) < 0) {
            JS_FreeValue(ctx, obj);
            return JS_EXCEPTION;
        }
    }
    return obj;
}

/* Named exports only (the bundle imports the namespace, `import * as tdnative`): a `default`
 * object with the same functions made every one of them a second time at each start. */
static int td_module_init(JSContext *ctx, JSModuleDef *m)
{
    JSValue err;
    if (JS_SetModuleExportList(ctx, m, td_funcs, countof(td_funcs)) < 0)
        return -1;
    err = errno_object(ctx);
    if (JS_IsException(err))
        return -1;
    return JS_SetModuleExport(ctx, m, "errno", err); /* frees err when it fails */
}

JSModuleDef *js_init_module_tdnative(JSContext *ctx, const char *name)
{
    JSModuleDef *m = JS_NewCModule(ctx, name, td_module_init);
    if (!m)
        return NULL;
    if (JS_AddModuleExportList(ctx, m, td_funcs, countof(td_funcs)) < 0 ||
        JS_AddModuleExport(ctx, m, "errno") < 0)
        return NULL;
    return m;
}
