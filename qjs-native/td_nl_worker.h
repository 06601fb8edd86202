/* td_nl_worker: netlink requests on a thread of their own, for the broker's event loop.
 *
 * The kernel executes a netlink request inside the sender's sendmsg() (the genetlink or
 * rtnetlink doit handler): an l2tp_eth SESSION_CREATE registers a net device under RTNL, a
 * SESSION_DELETE waits for RCU grace periods and unregisters one, RTM_SETLINK takes RTNL. With
 * thousands of interfaces, or while other threads hold RTNL, each takes up to seconds, and on the
 * event loop's thread every other tunnel would wait for it (docs/scaling.md). The worker sends
 * each request and receives its one reply datagram (requests whose only answer is their ACK, on
 * a netlink socket used for nothing else), in the order submitted, and signals completions on an
 * eventfd that the event loop watches. Encoding and decoding stay in JS (src/netlink). */
#ifndef TD_NL_WORKER_H
#define TD_NL_WORKER_H
#include <stddef.h>
#include <stdint.h>

/* Largest request and reply datagram (an ACK echoes the request's header, an error ACK the whole
 * request; ours are a few hundred bytes). A longer reply is reported as -EMSGSIZE. */
#define TD_NLW_MAX_BYTES 2048
/* Most requests queued or running at once (-EAGAIN beyond). */
#define TD_NLW_MAX_QUEUED 65536

struct td_nlw_done {
    uint32_t tag;
    /* the reply's length, or -errno of the send or the receive (-EAGAIN: no reply within the
     * socket's receive timeout) */
    int32_t result;
    uint8_t reply[TD_NLW_MAX_BYTES];
};

/* Starts the worker (once; later calls return the same fd): the eventfd that is readable while
 * completions wait to be taken, or -errno. */
int td_nlw_start(void);
/* Queues request (len bytes, copied) for fd; its completion carries tag. 0 or -errno (-EINVAL:
 * not started or len 0 / above TD_NLW_MAX_BYTES, -EAGAIN: queue full, -ENOMEM). */
int td_nlw_submit(int fd, const void *request, size_t len, uint32_t tag);
/* Moves up to max completions, in submit order, to out; returns how many (0: none yet). */
int td_nlw_take(struct td_nlw_done *out, unsigned max);
/* Requests queued or running. */
unsigned td_nlw_pending(void);
#endif
