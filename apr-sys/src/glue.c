/* C glue for mod_ja4: thin wrappers over httpd/APR macros. No logic lives here. */
#include "glue.h"
#include <http_log.h>
#include <ap_mmn.h>
#include <ap_release.h>
#include <apr_optional.h>
#include <mod_ssl.h>

APLOG_USE_MODULE(ja4);

void ja4_log_server(const server_rec *s, int level, apr_status_t status, const char *msg)
{
    ap_log_error(APLOG_MARK, level, status, s, "%s", msg);
}

void ja4_log_conn(const conn_rec *c, int level, const char *msg)
{
    ap_log_cerror(APLOG_MARK, level, 0, c, "%s", msg);
}

void ja4_log_request(const request_rec *r, int level, const char *msg)
{
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", msg);
}

extern module AP_MODULE_DECLARE_DATA ja4_module;

apr_bucket *ja4_brigade_first(apr_bucket_brigade *b) { return APR_BRIGADE_FIRST(b); }
apr_bucket *ja4_brigade_sentinel(apr_bucket_brigade *b) { return APR_BRIGADE_SENTINEL(b); }
apr_bucket *ja4_bucket_next(apr_bucket *e) { return APR_BUCKET_NEXT(e); }
int ja4_bucket_is_metadata(apr_bucket *e) { return APR_BUCKET_IS_METADATA(e); }
int ja4_bucket_is_eos(apr_bucket *e) { return APR_BUCKET_IS_EOS(e); }

apr_status_t ja4_bucket_read(apr_bucket *e, const char **str, apr_size_t *len, apr_read_type_e block)
{
    return apr_bucket_read(e, str, len, block);
}


const char *ja4_ssl_var(apr_pool_t *p, server_rec *s, conn_rec *c, request_rec *r, const char *name)
{
    APR_OPTIONAL_FN_TYPE(ssl_var_lookup) *fn = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    if (fn == NULL) {
        return NULL;
    }
    return fn(p, s, c, r, (char *)name);
}

int ja4_is_https(conn_rec *c)
{
    APR_OPTIONAL_FN_TYPE(ssl_is_https) *fn = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    if (fn == NULL) {
        return -1;
    }
    return fn(c) ? 1 : 0;
}

const char *ja4_server_version(void) { return AP_SERVER_BASEREVISION; }
int ja4_mmn_major(void) { return MODULE_MAGIC_NUMBER_MAJOR; }
int ja4_mmn_minor(void) { return MODULE_MAGIC_NUMBER_MINOR; }
