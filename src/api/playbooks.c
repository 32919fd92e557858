/* playbooks.c: placeholder while the playbooks module is written (this
 * session); replaced before landing. */
#include "api_int.h"

void hr_api_playbooks_list(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_playbook_put(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_playbook_get(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_playbook_delete(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_playbook_dry_run(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_account_signals(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_inbox(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
void hr_api_inbox_action(hr_req *r) { hr_reply_error(r, 501, "not_implemented", "soon"); }
