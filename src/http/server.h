/* server.h: headroomd's HTTP server on libmicrohttpd (epoll, a thread pool,
 * keep-alive). Requests are answered from memory by the API handlers. */
#ifndef HR_SERVER_H
#define HR_SERVER_H

#include "headroom.h"

typedef struct hr_app hr_app;
typedef struct hr_server hr_server;

/* Starts listening on host:port (port 0 picks a free one) with `threads`
 * worker threads. The app is borrowed and must outlive the server. */
int hr_server_start(hr_app *app, const char *host, int port, int threads, hr_server **out,
                    hr_err *err);
int hr_server_port(const hr_server *s);
/* Stops accepting new connections, finishes requests in flight, frees. */
void hr_server_stop(hr_server *s);

#endif
