/* qjs_main.c: entry point of the QuickJS client executable.
 *
 * Runs the precompiled bytecode module `qjsc_client` (qjsc -c -m of build/qjs/client.js) in a
 * context that has only the intrinsics the client needs. JS_AddIntrinsicEval is deliberately
 * not called: nothing then references the parser/compiler, so LTO + --gc-sections drop it
 * (about 170 KB on MIPS). For the same reason there is no `std` module (evalScript, FILE
 * objects) and no module loader: the only importable modules are the C modules below.
 *
 * quickjs-libc is not linked at all: its `os` module and js_std_loop are replaced by the small
 * event loop of td_qjs_loop.c (about 20 KB less on MIPS, see bench/size.md).
 *
 * Modules: `tdnative` (td_quickjs.c: sockets, netlink, spawn, resolver, syslog) and `tdproc`
 * (here: argv, exit, writing to stdout/stderr; td_qjs_loop.c: fd handlers, one-shot timers,
 * signals, monotonic clock). Portable C99 + POSIX: also built for big-endian MIPS soft-float
 * musl. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quickjs.h"

extern const uint8_t qjsc_client[];
extern const uint32_t qjsc_client_size;

JSModuleDef *js_init_module_tdnative(JSContext *ctx, const char *module_name);

/* td_qjs_loop.c */
extern const JSCFunctionListEntry td_loop_funcs[];
extern const int td_loop_funcs_count;
void td_loop_init(JSRuntime *rt);
void td_loop_eval_module(JSContext *ctx, const uint8_t *buf, size_t len);
void td_loop_run(JSContext *ctx);
void td_loop_free(JSContext *ctx);

#define countof(a) (sizeof(a) / sizeof((a)[0]))

static int td_argc;
static char **td_argv;

/* exit(code): flushes stdio (C exit) and ends the process without tearing down the runtime. */
static JSValue tdproc_exit(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int code = 0;
    if (argc > 0 && JS_ToInt32(ctx, &code, argv[0]))
        return JS_EXCEPTION;
    exit(code & 0xff);
}

/* writeString(fd, s): writes s as UTF-8, retrying short writes. Returns bytes written or
 * -errno. Used for log lines (stderr) without a TextEncoder in JS. */
static JSValue tdproc_write_string(JSContext *ctx, JSValueConst this_val, int argc,
                                   JSValueConst *argv)
{
    int fd;
    size_t len, done = 0;
    const char *s;

    if (JS_ToInt32(ctx, &fd, argv[0]))
        return JS_EXCEPTION;
    s = JS_ToCStringLen(ctx, &len, argv[1]);
    if (!s)
        return JS_EXCEPTION;
    while (done < len) {
        ssize_t n = write(fd, s + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            JS_FreeCString(ctx, s);
            return JS_NewInt32(ctx, -err);
        }
        done += (size_t)n;
    }
    JS_FreeCString(ctx, s);
    return JS_NewInt64(ctx, (int64_t)done);
}

static const JSCFunctionListEntry tdproc_funcs[] = {
    JS_CFUNC_DEF("exit", 1, tdproc_exit),
    JS_CFUNC_DEF("writeString", 2, tdproc_write_string),
};

static int tdproc_init(JSContext *ctx, JSModuleDef *m)
{
    JSValue args = JS_NewArray(ctx);
    int i;

    if (JS_IsException(args))
        return -1;
    /* argv without the program name, like process.argv.slice(2) in Node */
    for (i = 1; i < td_argc; i++)
        JS_SetPropertyUint32(ctx, args, (uint32_t)(i - 1), JS_NewString(ctx, td_argv[i]));
    if (JS_SetModuleExport(ctx, m, "argv", args) < 0 ||
        JS_SetModuleExportList(ctx, m, td_loop_funcs, td_loop_funcs_count) < 0)
        return -1;
    return JS_SetModuleExportList(ctx, m, tdproc_funcs, countof(tdproc_funcs));
}

static JSModuleDef *js_init_module_tdproc(JSContext *ctx, const char *module_name)
{
    JSModuleDef *m = JS_NewCModule(ctx, module_name, tdproc_init);
    if (!m)
        return NULL;
    if (JS_AddModuleExport(ctx, m, "argv") < 0 ||
        JS_AddModuleExportList(ctx, m, td_loop_funcs, td_loop_funcs_count) < 0 ||
        JS_AddModuleExportList(ctx, m, tdproc_funcs, countof(tdproc_funcs)) < 0)
        return NULL;
    return m;
}

int main(int argc, char **argv)
{
    JSRuntime *rt;
    JSContext *ctx;

    td_argc = argc;
    td_argv = argv;
    /* as the original client: a write to a closed pipe (stderr to a dead logger with -f) must
     * not kill the process; sockets use MSG_NOSIGNAL anyway. Hooks get SIG_DFL back
     * (td_core.c resets every signal in the child). */
    signal(SIGPIPE, SIG_IGN);

    rt = JS_NewRuntime();
    if (!rt) {
        fprintf(stderr, "tunneldigger: cannot allocate the JavaScript runtime, exiting\n");
        return 1;
    }
    /* an unhandled promise rejection is a bug: print it and exit(1) */
    td_loop_init(rt);

    ctx = JS_NewContextRaw(rt);
    if (!ctx) {
        fprintf(stderr, "tunneldigger: cannot allocate the JavaScript context, exiting\n");
        return 1;
    }
    /* Only what the bundle uses (src/runtime/quickjs/check-bundle.mjs fails the build when it
     * references any other global, or holds a regexp literal). Not added, and so dropped by the
     * linker: Date, JSON, Proxy, WeakRef, and RegExp with libregexp's compiler and matcher and
     * libunicode's property tables (about 30 KB on MIPS, bench/size.md). Promise stays: module
     * evaluation uses it internally. */
    JS_AddIntrinsicBaseObjects(ctx);
    JS_AddIntrinsicMapSet(ctx);
    JS_AddIntrinsicTypedArrays(ctx);
    JS_AddIntrinsicPromise(ctx);

    if (!js_init_module_tdnative(ctx, "tdnative") ||
        !js_init_module_tdproc(ctx, "tdproc")) {
        fprintf(stderr, "tunneldigger: cannot register the native modules, exiting\n");
        return 1;
    }

    /* evaluates the module (one line and exit(1) if it throws), then runs timers, fd
     * handlers and signal handlers until no fd is watched and no timer is pending */
    td_loop_eval_module(ctx, qjsc_client, qjsc_client_size);
    td_loop_run(ctx);

    td_loop_free(ctx);
    JS_FreeContext(ctx);
    JS_FreeRuntime(rt);
    return 0;
}
