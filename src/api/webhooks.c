/* webhooks.c: placeholder while the webhooks module is written (this
 * session); replaced before landing. */
#include "api_int.h"

void hr_api_webhook_deliveries(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_webhook_get(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_webhook_replay(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
