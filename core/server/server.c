/*
 * The HTTP and websocket side of vkflow serve, on libwebsockets' event loop.
 *
 * Threads: lws runs in the thread that calls vkf_server_run(); the executor
 * thread (queue.c) hands websocket messages to an outbox under a mutex and
 * wakes the loop with lws_cancel_service(), whose
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED routes them to the sockets.  Socket
 * state is touched by the loop thread only.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "graph/internal.h"
#include "server/internal.h"

/* A socket whose unsent messages pass this is too slow: it is dropped so
 * that it cannot hold the server's memory. */
#define WS_MAX_QUEUED_BYTES (64u * 1024 * 1024)
#define WS_MAX_RX_BYTES (1024 * 1024)
#define HTTP_CHUNK 16384
#define HTTP_INLINE_MAX 8192

typedef struct shared_msg {
    int refs;               /* loop thread only */
    bool binary;
    size_t len;
    unsigned char buf[];    /* LWS_PRE bytes, then the payload */
} shared_msg;

typedef struct msg_node {
    struct msg_node *next;
    shared_msg *m;
} msg_node;

typedef struct outbox_entry {
    struct outbox_entry *next;
    char *sid;              /* NULL: every socket */
    shared_msg *m;
} outbox_entry;

typedef struct ws_client {
    struct ws_client *next;
    struct lws *wsi;
    char *sid;
    bool listed;            /* in srv->clients (false once replaced) */
    bool got_message;
    bool closing;
    cJSON *feature_flags;
    msg_node *head, *tail;
    size_t queued;
    char *rx;
    size_t rx_len;
} ws_client;

struct vkf_server {
    vkf_server_params p;
    vkf_app *app;
    struct lws_context *ctx;
    atomic_int stop;
    pthread_mutex_t out_lock;
    bool out_lock_ready;
    outbox_entry *out_head, *out_tail;
    ws_client *clients;
};

/* One connection's state: an HTTP transaction at a time (keep-alive
 * reuses it), or, after the upgrade, its websocket client. */
typedef struct pss {
    char method[8];
    char *path;
    char **qn, **qv;
    int nq;
    char *body;
    size_t body_len, body_cap;
    bool discard;               /* read the body, keep nothing */
    int deferred_status;        /* the error to answer once it is read */
    const char *deferred_type, *deferred_message;
    bool upload, mask;
    struct lws_spa *spa;
    char *up_data;
    size_t up_len, up_cap;
    char *up_filename;
    int up_files;
    bool up_bad;
    vkf_http_response resp;
    bool responding;
    bool close_after;
    char *out_buf;          /* headers already sent; the body from here */
    size_t out_off;
    int fd;
    bool fd_open;
    size_t file_size, file_sent;
    char *ws_sid;           /* from the handshake */
    ws_client *client;
} pss;

/* lws logs through a process-wide emitter without a user pointer. */
static const vkf_log *lws_log_target;

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    vkf_logf(lws_log_target, level == LLL_ERR ? VKF_LOG_ERROR : VKF_LOG_DEBUG, "lws: %.*s",
             (int)n, line);
}

/* ---- messages --------------------------------------------------------------- */

static shared_msg *msg_new(const void *data, size_t len, bool binary)
{
    shared_msg *m = vkf_malloc(sizeof(*m) + LWS_PRE + len + 1);
    if (!m)
        return NULL;
    m->refs = 1;
    m->binary = binary;
    m->len = len;
    memcpy(m->buf + LWS_PRE, data, len);
    m->buf[LWS_PRE + len] = 0;
    return m;
}

static void msg_unref(shared_msg *m)
{
    if (m && --m->refs == 0)
        vkf_free(m);
}

static void client_enqueue(ws_client *c, shared_msg *m)
{
    if (c->closing)
        return;
    if (c->queued + m->len > WS_MAX_QUEUED_BYTES) {
        c->closing = true;
        lws_callback_on_writable(c->wsi);
        return;
    }
    msg_node *n = vkf_malloc(sizeof(*n));
    if (!n)
        return;
    n->next = NULL;
    n->m = m;
    m->refs++;
    if (c->tail)
        c->tail->next = n;
    else
        c->head = n;
    c->tail = n;
    c->queued += m->len;
    lws_callback_on_writable(c->wsi);
}

static void client_send_text(ws_client *c, const char *text)
{
    shared_msg *m = msg_new(text, strlen(text), false);
    if (m) {
        client_enqueue(c, m);
        msg_unref(m);
    }
}

static void client_free(ws_client *c)
{
    while (c->head) {
        msg_node *n = c->head;
        c->head = n->next;
        msg_unref(n->m);
        vkf_free(n);
    }
    cJSON_Delete(c->feature_flags);
    vkf_free(c->sid);
    vkf_free(c->rx);
    vkf_free(c);
}

static ws_client *find_client(vkf_server *srv, const char *sid)
{
    for (ws_client *c = srv->clients; c; c = c->next)
        if (!strcmp(c->sid, sid))
            return c;
    return NULL;
}

static void unlist_client(vkf_server *srv, ws_client *c)
{
    for (ws_client **pp = &srv->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->listed = false;
    c->next = NULL;
}

/* The app's sinks: any thread. */
static void outbox_push(vkf_server *srv, const char *sid, const void *data, size_t len,
                        bool binary)
{
    outbox_entry *e = vkf_calloc(1, sizeof(*e));
    if (!e)
        return;
    e->m = msg_new(data, len, binary);
    e->sid = sid ? vkf_strdup(sid) : NULL;
    if (!e->m || (sid && !e->sid)) {
        msg_unref(e->m);
        vkf_free(e->sid);
        vkf_free(e);
        return;
    }
    pthread_mutex_lock(&srv->out_lock);
    if (srv->out_tail)
        srv->out_tail->next = e;
    else
        srv->out_head = e;
    srv->out_tail = e;
    pthread_mutex_unlock(&srv->out_lock);
    if (srv->ctx)
        lws_cancel_service(srv->ctx);
}

static void outbox_send(void *priv, const char *sid, const char *text)
{
    outbox_push(priv, sid, text, strlen(text), false);
}

static void outbox_send_bin(void *priv, const char *sid, const void *data, size_t len)
{
    outbox_push(priv, sid, data, len, true);
}

static void outbox_drain(vkf_server *srv, bool deliver)
{
    pthread_mutex_lock(&srv->out_lock);
    outbox_entry *e = srv->out_head;
    srv->out_head = srv->out_tail = NULL;
    pthread_mutex_unlock(&srv->out_lock);
    while (e) {
        outbox_entry *next = e->next;
        if (deliver) {
            if (e->sid) {
                ws_client *c = find_client(srv, e->sid);
                if (c)
                    client_enqueue(c, e->m);
            } else {
                for (ws_client *c = srv->clients; c; c = c->next)
                    client_enqueue(c, e->m);
            }
        }
        msg_unref(e->m);
        vkf_free(e->sid);
        vkf_free(e);
        e = next;
    }
}

/* ---- HTTP helpers --------------------------------------------------------------- */

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0)
        return NULL;
    char *s = vkf_malloc((size_t)n + 1);
    if (s && lws_hdr_copy(wsi, s, n + 1, tok) < 0) {
        vkf_free(s);
        return NULL;
    }
    return s;
}

static void txn_reset(pss *s)
{
    vkf_free(s->path);
    for (int i = 0; i < s->nq; i++) {
        vkf_free(s->qn[i]);
        vkf_free(s->qv[i]);
    }
    vkf_free(s->qn);
    vkf_free(s->qv);
    vkf_free(s->body);
    if (s->spa)
        lws_spa_destroy(s->spa);
    vkf_free(s->up_data);
    vkf_free(s->up_filename);
    vkf_http_response_clear(&s->resp);
    if (s->fd_open)
        close(s->fd);
    char *sid = s->ws_sid;
    ws_client *client = s->client;
    memset(s, 0, sizeof(*s));
    s->ws_sid = sid;
    s->client = client;
}

static int collect_query(struct lws *wsi, pss *s)
{
    char buf[8192];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        /* libwebsockets also splits at ';', which ComfyUI's clients send
         * unescaped inside values (/view?preview=webp;90): a piece without
         * '=' continues the previous value. */
        if (!strchr(buf, '=') && s->nq > 0) {
            char *joined = vkf_asprintf("%s;%s", s->qv[s->nq - 1], buf);
            if (!joined)
                return VKF_ENOMEM;
            vkf_free(s->qv[s->nq - 1]);
            s->qv[s->nq - 1] = joined;
            continue;
        }
        char **qn = vkf_realloc(s->qn, sizeof(*qn) * (size_t)(s->nq + 1));
        if (!qn)
            return VKF_ENOMEM;
        s->qn = qn;
        char **qv = vkf_realloc(s->qv, sizeof(*qv) * (size_t)(s->nq + 1));
        if (!qv)
            return VKF_ENOMEM;
        s->qv = qv;
        char *eq = strchr(buf, '=');
        s->qn[s->nq] = eq ? vkf_strndup(buf, (size_t)(eq - buf)) : vkf_strdup(buf);
        s->qv[s->nq] = vkf_strdup(eq ? eq + 1 : "");
        s->nq++;
        if (!s->qn[s->nq - 1] || !s->qv[s->nq - 1])
            return VKF_ENOMEM;
    }
    return 0;
}

static const char *query_get(const pss *s, const char *name)
{
    for (int i = 0; i < s->nq; i++)
        if (!strcmp(s->qn[i], name))
            return s->qv[i];
    return NULL;
}

/* Constant time in the length of the expected token. */
static bool token_equal(const char *given, const char *want)
{
    size_t n = strlen(want), g = strlen(given);
    unsigned diff = (unsigned)(g != n);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < g ? given[i] : 0);
    return diff == 0;
}

static bool authorized(vkf_server *srv, struct lws *wsi, const char *query_token)
{
    if (!srv->p.auth_token)
        return true;
    if (query_token && token_equal(query_token, srv->p.auth_token))
        return true;
    char *auth = hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    bool ok = auth && !strncasecmp(auth, "Bearer ", 7) && token_equal(auth + 7, srv->p.auth_token);
    vkf_free(auth);
    return ok;
}

static bool is_loopback_host(const char *h)
{
    return !strcasecmp(h, "localhost") || !strncmp(h, "127.", 4) || !strcmp(h, "::1") ||
           !strcmp(h, "[::1]");
}

/* Splits "host:port" / "[v6]:port" into host and port (port may be ""). */
static void split_host(const char *in, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;
    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        size_t n = close ? (size_t)(close - in + 1) : strlen(in);
        snprintf(host, hn, "%.*s", (int)n, in);
        colon = close && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(in, ':');
        snprintf(host, hn, "%.*s", (int)(colon ? (size_t)(colon - in) : strlen(in)), in);
    }
    snprintf(port, pn, "%s", colon ? colon + 1 : "");
}

/* ComfyUI's origin_only_middleware: a browser page elsewhere must not
 * drive a server on a loopback address (there is no CORS by default). */
static bool origin_allowed(vkf_server *srv, struct lws *wsi)
{
    if (srv->p.cors_origin)
        return true;
    char *host = hdr_dup(wsi, WSI_TOKEN_HOST);
    char *origin = hdr_dup(wsi, WSI_TOKEN_ORIGIN);
    bool ok = true;
    if (host && origin) {
        const char *o = strstr(origin, "://");
        o = o ? o + 3 : origin;
        char oh[256], op[16], hh[256], hp[16];
        split_host(o, oh, sizeof(oh), op, sizeof(op));
        split_host(host, hh, sizeof(hh), hp, sizeof(hp));
        if (is_loopback_host(hh) && oh[0]) {
            bool ports = op[0] && hp[0];
            ok = !strcasecmp(oh, hh) && (!ports || !strcmp(op, hp));
        }
    }
    vkf_free(host);
    vkf_free(origin);
    return ok;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Sends the status line and headers of s->resp; the body follows from the
 * writeable callback. */
static int start_response(vkf_server *srv, struct lws *wsi, pss *s)
{
    vkf_http_response *r = &s->resp;
    size_t len = r->body_len;
    if (r->file_path) {
        struct stat st;
        s->fd = open(r->file_path, O_RDONLY | O_CLOEXEC);
        s->fd_open = s->fd >= 0;
        if (!s->fd_open || fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            vkf_http_response_clear(r);
            vkf_http_error(r, 404, "not_found", "No such file");
            len = r->body_len;
        } else {
            s->file_size = (size_t)st.st_size;
            len = s->file_size;
        }
    }
    unsigned char hbuf[LWS_PRE + 4096];
    unsigned char *start = hbuf + LWS_PRE, *p = start, *end = hbuf + sizeof(hbuf) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status,
                                    r->content_type ? r->content_type : "text/plain", len, &p, end))
        return -1;
    if (r->file_name) {
        char disp[1024];
        size_t o = 0;
        o += (size_t)snprintf(disp, sizeof(disp), "%sfilename=\"", r->attachment ? "attachment; " : "");
        for (const char *c = r->file_name; *c && o + 4 < sizeof(disp); c++) {
            if (*c == '"' || *c == '\\')
                disp[o++] = '\\';
            disp[o++] = (*c == '\r' || *c == '\n') ? '_' : *c;
        }
        disp[o++] = '"';
        disp[o] = 0;
        if (add_header(wsi, "content-disposition:", disp, &p, end) ||
            add_header(wsi, "x-content-type-options:", "nosniff", &p, end))
            return -1;
    }
    if (r->status == 401 && add_header(wsi, "www-authenticate:", "Bearer", &p, end))
        return -1;
    if (srv->p.cors_origin &&
        (add_header(wsi, "access-control-allow-origin:", srv->p.cors_origin, &p, end) ||
         add_header(wsi, "access-control-allow-methods:", "POST, GET, DELETE, PUT, OPTIONS, PATCH",
                    &p, end) ||
         add_header(wsi, "access-control-allow-headers:", "Content-Type, Authorization", &p, end) ||
         add_header(wsi, "access-control-allow-credentials:", "true", &p, end)))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    s->responding = true;
    /* A small body goes out with the headers, from this callback: the
     * reply to POST /prompt then reaches the client before any websocket
     * message of that prompt, which only this thread writes. */
    if (!r->file_path && r->body_len && r->body_len <= HTTP_INLINE_MAX &&
        !lws_partial_buffered(wsi)) {
        unsigned char buf[LWS_PRE + HTTP_INLINE_MAX];
        memcpy(buf + LWS_PRE, r->body, r->body_len);
        if (lws_write(wsi, buf + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL) < (int)r->body_len)
            return -1;
        s->out_off = r->body_len;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int respond_error(vkf_server *srv, struct lws *wsi, pss *s, int status, const char *type,
                         const char *message)
{
    vkf_http_response_clear(&s->resp);
    if (vkf_http_error(&s->resp, status, type, message) < 0)
        return -1;
    return start_response(srv, wsi, s);
}

static int dispatch(vkf_server *srv, struct lws *wsi, pss *s)
{
    vkf_http_request req = {
        .method = s->method, .path = s->path,
        .query = {.names = (const char *const *)s->qn, .values = (const char *const *)s->qv,
                  .count = s->nq},
        .body = s->body, .body_len = s->body_len,
    };
    if (vkf_app_handle(srv->app, &req, &s->resp) < 0)
        return -1;
    return start_response(srv, wsi, s);
}

static int finish_upload(vkf_server *srv, struct lws *wsi, pss *s)
{
    if (lws_spa_finalize(s->spa) || s->up_bad)
        return respond_error(srv, wsi, s, 400, "invalid_upload", "Malformed multipart body");
    enum { P_IMAGE, P_TYPE, P_SUBFOLDER, P_OVERWRITE, P_ORIGINAL_REF };
    vkf_upload up = {
        .mask = s->mask,
        .filename = s->up_filename,
        .data = s->up_data ? s->up_data : "",
        .size = s->up_len,
        .type = lws_spa_get_string(s->spa, P_TYPE),
        .subfolder = lws_spa_get_string(s->spa, P_SUBFOLDER),
        .overwrite = lws_spa_get_string(s->spa, P_OVERWRITE),
        .original_ref = lws_spa_get_string(s->spa, P_ORIGINAL_REF),
    };
    if (vkf_app_upload(srv->app, &up, &s->resp) < 0)
        return respond_error(srv, wsi, s, 500, "internal_error", "out of memory");
    return start_response(srv, wsi, s);
}

static int upload_cb(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states state)
{
    pss *s = data;
    if (strcmp(name, "image"))
        return 0;
    switch (state) {
    case LWS_UFS_OPEN:
        /* Only the first file part counts, like request.post().get(). */
        if (++s->up_files == 1 && !(s->up_filename = vkf_strdup(filename ? filename : "")))
            return -1;
        break;
    case LWS_UFS_CONTENT:
    case LWS_UFS_FINAL_CONTENT:
        if (len > 0 && s->up_files == 1) {
            if (s->up_len + (size_t)len > s->up_cap) {
                size_t cap = s->up_cap ? s->up_cap * 2 : 65536;
                while (cap < s->up_len + (size_t)len)
                    cap *= 2;
                char *nd = vkf_realloc(s->up_data, cap);
                if (!nd)
                    return -1;
                s->up_data = nd;
                s->up_cap = cap;
            }
            memcpy(s->up_data + s->up_len, buf, (size_t)len);
            s->up_len += (size_t)len;
        }
        break;
    case LWS_UFS_CLOSE:
        break;
    }
    return 0;
}

static const char *const upload_params[] = {"image", "type", "subfolder", "overwrite",
                                            "original_ref"};

static int http_request(vkf_server *srv, struct lws *wsi, pss *s, const char *uri)
{
    txn_reset(s);
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},         {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}, {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    snprintf(s->method, sizeof(s->method), "?");
    for (size_t i = 0; i < VKF_ARRAY_SIZE(methods); i++) {
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(s->method, sizeof(s->method), "%s", methods[i].name);
            break;
        }
    }
    const char *path = uri ? uri : "/";
    if (!strncmp(path, "/api/", 5))
        path += 4;
    if (!(s->path = vkf_strdup(path)) || collect_query(wsi, s) < 0)
        return -1;
    /* CORS preflights carry no credentials. */
    if (!strcmp(s->method, "OPTIONS")) {
        if (vkf_http_json(&s->resp, 200, cJSON_CreateObject()) < 0)
            return -1;
        return start_response(srv, wsi, s);
    }
    int status = 0;
    const char *etype = NULL, *emsg = NULL;
    if (!authorized(srv, wsi, query_get(s, "token"))) {
        status = 401;
        etype = "unauthorized";
        emsg = "Missing or wrong token (Authorization: Bearer or ?token=)";
    } else if (!origin_allowed(srv, wsi)) {
        status = 403;
        etype = "forbidden";
        emsg = "Origin does not match Host";
    }
    bool has_body = !strcmp(s->method, "POST") || !strcmp(s->method, "PUT") ||
                    !strcmp(s->method, "PATCH");
    long long len = 0;
    bool chunked = false;
    if (has_body) {
        char *cl = hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        char *te = hdr_dup(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
        len = cl ? strtoll(cl, NULL, 10) : 0;
        chunked = te && strcasestr(te, "chunked");
        vkf_free(cl);
        vkf_free(te);
    }
    int64_t max = srv->app->p.max_body_bytes;
    if (!status && len > max) {
        status = 413;
        etype = "body_too_large";
        emsg = "The request body is larger than the server accepts";
    }
    if (status) {
        /* A refused request's body is read and dropped so that the client,
         * still sending, sees the answer; a huge one is cut off. */
        if ((len > 0 || chunked) && len <= 2 * max) {
            s->discard = true;
            s->deferred_status = status;
            s->deferred_type = etype;
            s->deferred_message = emsg;
            return 0;
        }
        s->close_after = len > 0 || chunked;
        return respond_error(srv, wsi, s, status, etype, emsg);
    }
    if (has_body) {
        if (!strcmp(s->method, "POST") &&
            (!strcmp(s->path, "/upload/image") || !strcmp(s->path, "/upload/mask"))) {
            char *ct = hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
            bool form = ct && (!strncasecmp(ct, "multipart/form-data", 19) ||
                               !strncasecmp(ct, "application/x-www-form-urlencoded", 33));
            vkf_free(ct);
            if (form) {
                s->upload = true;
                s->mask = !strcmp(s->path, "/upload/mask");
                s->spa = lws_spa_create(wsi, upload_params, (int)VKF_ARRAY_SIZE(upload_params),
                                        65536, upload_cb, s);
                if (!s->spa)
                    return -1;
            }
        }
        if (len > 0 || chunked)
            return 0;   /* the body comes in LWS_CALLBACK_HTTP_BODY */
        if (s->upload)
            return finish_upload(srv, wsi, s);
    }
    return dispatch(srv, wsi, s);
}

static int http_body(vkf_server *srv, pss *s, const char *in, size_t len)
{
    if (s->discard || s->responding)
        return 0;
    if (s->body_len + len > (size_t)srv->app->p.max_body_bytes) {
        s->discard = true;
        s->deferred_status = 413;
        s->deferred_type = "body_too_large";
        s->deferred_message = "The request body is larger than the server accepts";
        return 0;
    }
    if (s->upload) {
        s->body_len += len;   /* counted, not kept: the parser keeps it */
        if (lws_spa_process(s->spa, in, (int)len))
            s->up_bad = true;
        return 0;
    }
    if (s->body_len + len + 1 > s->body_cap) {
        size_t cap = s->body_cap ? s->body_cap * 2 : 4096;
        while (cap < s->body_len + len + 1)
            cap *= 2;
        char *nb = vkf_realloc(s->body, cap);
        if (!nb)
            return -1;
        s->body = nb;
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, in, len);
    s->body_len += len;
    s->body[s->body_len] = 0;
    return 0;
}

static int http_body_done(vkf_server *srv, struct lws *wsi, pss *s)
{
    if (s->responding)
        return 0;
    if (s->deferred_status) {
        /* Keep-alive is fine: the whole body has been read. */
        return respond_error(srv, wsi, s, s->deferred_status, s->deferred_type,
                             s->deferred_message);
    }
    if (s->upload)
        return finish_upload(srv, wsi, s);
    return dispatch(srv, wsi, s);
}

static int http_writeable(struct lws *wsi, pss *s)
{
    if (!s->responding)
        return 0;
    unsigned char buf[LWS_PRE + HTTP_CHUNK];
    size_t total = s->resp.file_path ? s->file_size : s->resp.body_len;
    size_t done = s->resp.file_path ? s->file_sent : s->out_off;
    size_t n = total - done < HTTP_CHUNK ? total - done : HTTP_CHUNK;
    if (n > 0) {
        if (s->resp.file_path) {
            ssize_t got = pread(s->fd, buf + LWS_PRE, n, (off_t)done);
            if (got <= 0)
                return -1;
            n = (size_t)got;
            s->file_sent += n;
        } else {
            memcpy(buf + LWS_PRE, s->resp.body + done, n);
            s->out_off += n;
        }
        bool last = done + n >= total;
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
            (int)n)
            return -1;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    bool close_after = s->close_after;
    txn_reset(s);
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- websocket ------------------------------------------------------------------ */

static bool is_ws_path(const char *p)
{
    return !strcmp(p, "/ws") || !strcmp(p, "/api/ws");
}

static int ws_filter(vkf_server *srv, struct lws *wsi, pss *s)
{
    char *uri = hdr_dup(wsi, WSI_TOKEN_GET_URI);
    bool ok = uri && is_ws_path(uri);
    vkf_free(uri);
    char buf[512];
    const char *tok = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
    ok = ok && authorized(srv, wsi, tok) && origin_allowed(srv, wsi);
    if (!ok)
        return 1;
    const char *sid = lws_get_urlarg_by_name(wsi, "clientId=", buf, sizeof(buf));
    vkf_free(s->ws_sid);
    s->ws_sid = sid && sid[0] ? vkf_strdup(sid) : NULL;
    return 0;
}

static int ws_established(vkf_server *srv, struct lws *wsi, pss *s)
{
    ws_client *c = vkf_calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->wsi = wsi;
    c->sid = s->ws_sid ? s->ws_sid : vkf_uuid4(false);
    s->ws_sid = NULL;
    if (!c->sid) {
        vkf_free(c);
        return -1;
    }
    /* Reconnecting with a known id replaces the old socket, which stays
     * open but gets no more messages (as in ComfyUI). */
    ws_client *old = find_client(srv, c->sid);
    if (old)
        unlist_client(srv, old);
    c->listed = true;
    c->next = srv->clients;
    srv->clients = c;
    s->client = c;

    cJSON *d = cJSON_CreateObject();
    cJSON *m = cJSON_CreateObject();
    if (d && m && vkf_json_add(d, "status", vkf_app_queue_info(srv->app)) &&
        cJSON_AddStringToObject(d, "sid", c->sid) && cJSON_AddStringToObject(m, "type", "status") &&
        cJSON_AddItemToObject(m, "data", d)) {
        d = NULL;
        char *text = cJSON_PrintUnformatted(m);
        if (text)
            client_send_text(c, text);
        vkf_free(text);
    }
    cJSON_Delete(d);
    cJSON_Delete(m);
    char *replay = vkf_app_replay_executing(srv->app, c->sid);
    if (replay)
        client_send_text(c, replay);
    vkf_free(replay);
    return 0;
}

static void ws_message(vkf_server *srv, ws_client *c)
{
    cJSON *j = cJSON_ParseWithLength(c->rx, c->rx_len);
    if (!j) {
        vkf_logf(srv->p.log, VKF_LOG_WARN, "invalid JSON from websocket client %s", c->sid);
        return;
    }
    bool first = !c->got_message;
    c->got_message = true;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (first && cJSON_IsString(type) && !strcmp(type->valuestring, "feature_flags")) {
        cJSON *flags = cJSON_DetachItemFromObjectCaseSensitive(j, "data");
        cJSON_Delete(c->feature_flags);
        c->feature_flags = flags ? flags : cJSON_CreateObject();
        cJSON *f = cJSON_CreateObject();
        cJSON *m = cJSON_CreateObject();
        if (f && m && cJSON_AddBoolToObject(f, "supports_preview_metadata", true) &&
            cJSON_AddNumberToObject(f, "max_upload_size", (double)srv->app->p.max_body_bytes) &&
            cJSON_AddStringToObject(m, "type", "feature_flags") && cJSON_AddItemToObject(m, "data", f)) {
            f = NULL;
            char *text = cJSON_PrintUnformatted(m);
            if (text)
                client_send_text(c, text);
            vkf_free(text);
        }
        cJSON_Delete(f);
        cJSON_Delete(m);
    }
    cJSON_Delete(j);
}

static int ws_receive(vkf_server *srv, struct lws *wsi, ws_client *c, const void *in, size_t len)
{
    if (c->rx_len + len > WS_MAX_RX_BYTES)
        return -1;
    char *nb = vkf_realloc(c->rx, c->rx_len + len + 1);
    if (!nb)
        return -1;
    c->rx = nb;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        if (!lws_frame_is_binary(wsi))
            ws_message(srv, c);
        c->rx_len = 0;
    }
    return 0;
}

static int ws_writeable(struct lws *wsi, ws_client *c)
{
    if (c->closing)
        return -1;
    msg_node *n = c->head;
    if (!n)
        return 0;
    c->head = n->next;
    if (!c->head)
        c->tail = NULL;
    c->queued -= n->m->len;
    int w = lws_write(wsi, n->m->buf + LWS_PRE, n->m->len,
                      n->m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    bool failed = w < (int)n->m->len;
    msg_unref(n->m);
    vkf_free(n);
    if (failed)
        return -1;
    if (c->head)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- the protocol callback ---------------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    vkf_server *srv = ctx ? lws_context_user(ctx) : NULL;
    pss *s = user;
    if (!srv)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
        if (s)
            memset(s, 0, sizeof(*s));
        return 0;
    case LWS_CALLBACK_HTTP:
        return http_request(srv, wsi, s, in);
    case LWS_CALLBACK_HTTP_BODY:
        return http_body(srv, s, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return http_body_done(srv, wsi, s);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writeable(wsi, s);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (s && !s->client)
            txn_reset(s);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(srv, wsi, s);
    case LWS_CALLBACK_ESTABLISHED:
        return ws_established(srv, wsi, s);
    case LWS_CALLBACK_RECEIVE:
        return s->client ? ws_receive(srv, wsi, s->client, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s->client ? ws_writeable(wsi, s->client) : 0;
    case LWS_CALLBACK_CLOSED:
        if (s && s->client) {
            if (s->client->listed)
                unlist_client(srv, s->client);
            client_free(s->client);
            s->client = NULL;
        }
        if (s) {
            vkf_free(s->ws_sid);
            s->ws_sid = NULL;
            txn_reset(s);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        outbox_drain(srv, true);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(pss), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- life cycle ------------------------------------------------------------------- */

int vkf_server_create(vkf_server **out, const vkf_server_params *params)
{
    int err;
    vkf_server *srv = vkf_calloc(1, sizeof(*srv));
    if (!srv)
        return VKF_ENOMEM;
    srv->p = *params;
    /* libwebsockets takes an address or an interface name, not a host name. */
    if (!srv->p.listen || !strcmp(srv->p.listen, "localhost"))
        srv->p.listen = "127.0.0.1";
    if (!srv->p.port)
        srv->p.port = 8188;
    if (pthread_mutex_init(&srv->out_lock, NULL) != 0) {
        vkf_free(srv);
        return VKF_ENOMEM;
    }
    srv->out_lock_ready = true;
    VKF_TRY(vkf_app_create(&srv->app, &srv->p, false));
    vkf_app_set_sink(srv->app, outbox_send, srv);
    vkf_app_set_bin_sink(srv->app, outbox_send_bin);
    *out = srv;
    return 0;
fail:
    vkf_server_destroy(&srv);
    return err;
}

int vkf_server_run(vkf_server *srv)
{
    lws_log_target = srv->p.log;
    lws_set_log_level(LLL_ERR, lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = srv->p.port;
    info.iface = srv->p.listen;
    info.protocols = protocols;
    info.user = srv;
    info.max_http_header_data = 16384;
    info.pt_serv_buf_size = 65536;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(srv->p.listen, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        vkf_logf(srv->p.log, VKF_LOG_ERROR, "cannot listen on %s port %d", srv->p.listen,
                 srv->p.port);
        return VKF_EIO;
    }
    int err = vkf_queue_start_worker(srv->app);
    if (err < 0)
        return err;
    vkf_logf(srv->p.log, VKF_LOG_INFO, "listening on http://%s%s%s:%d/",
             strchr(srv->p.listen, ':') ? "[" : "", srv->p.listen,
             strchr(srv->p.listen, ':') ? "]" : "", srv->p.port);
    while (!atomic_load(&srv->stop)) {
        if (lws_service(srv->ctx, 0) < 0)
            break;
    }
    return 0;
}

void vkf_server_stop(vkf_server *srv)
{
    atomic_store(&srv->stop, 1);
    if (srv->app && srv->app->ex)
        vkf_executor_interrupt(srv->app->ex);
    if (srv->ctx)
        lws_cancel_service(srv->ctx);
}

void vkf_server_destroy(vkf_server **psrv)
{
    vkf_server *srv = *psrv;
    if (!srv)
        return;
    if (srv->app)
        vkf_queue_stop_worker(srv->app);
    if (srv->ctx) {
        lws_context_destroy(srv->ctx);
        srv->ctx = NULL;
    }
    if (srv->out_lock_ready) {
        outbox_drain(srv, false);
        pthread_mutex_destroy(&srv->out_lock);
    }
    while (srv->clients) {
        ws_client *c = srv->clients;
        srv->clients = c->next;
        client_free(c);
    }
    vkf_app_destroy(&srv->app);
    vkf_free(srv);
    *psrv = NULL;
}
