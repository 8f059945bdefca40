/* C glue for what httpd and APR offer only as macros or variadic functions. */
#ifndef JA4_GLUE_H
#define JA4_GLUE_H
#include <httpd.h>
#include <http_config.h>
#include <util_filter.h>
#include <apr_buckets.h>

void ja4_log_server(const server_rec *s, int level, apr_status_t status, const char *msg);
void ja4_log_conn(const conn_rec *c, int level, const char *msg);
void ja4_log_request(const request_rec *r, int level, const char *msg);


apr_bucket *ja4_brigade_first(apr_bucket_brigade *b);
apr_bucket *ja4_brigade_sentinel(apr_bucket_brigade *b);
apr_bucket *ja4_bucket_next(apr_bucket *e);
int ja4_bucket_is_metadata(apr_bucket *e);
int ja4_bucket_is_eos(apr_bucket *e);
apr_status_t ja4_bucket_read(apr_bucket *e, const char **str, apr_size_t *len, apr_read_type_e block);


/* mod_ssl's optional functions; NULL / 0 when mod_ssl is not loaded. */
const char *ja4_ssl_var(apr_pool_t *p, server_rec *s, conn_rec *c, request_rec *r, const char *name);
/* 1: mod_ssl runs TLS on this connection (after its pre_connection), 0: it does not,
 * -1: mod_ssl is not loaded. */
int ja4_is_https(conn_rec *c);

const char *ja4_server_version(void);
int ja4_mmn_major(void);
int ja4_mmn_minor(void);

#endif
