"""The route table: method, path, and the one stored function each route calls.

Who may call a route and the rate limit it counts against are not here: they are said once,
in SQL, beside the function, and read from the database at startup (api/openapi.py, Contract):

- who: the function's EXECUTE grants (sql/policies/) to the client roles anon, guest, host,
  admin. A role without the grant gets 401 if anonymous, else 403, before the call. Granted to
  anon, or to api_internal (the API process calls it itself after its own check: a provider's
  signature, an OAuth exchange; api/specials.py), the route admits any caller. Row-level
  checks (your own booking, the listing's host) stay in the function and its policies.
- the rate class: `rate` of its `app.api_operation(...)` line (sql/functions/03_contract.sql):
  read for a stable function, write otherwise, or the class it names; null: not limited.

Adding an endpoint touches: the SQL function in sql/functions/NN_<domain>.sql with its
`comment on function` (the OpenAPI description) and its `app.api_operation(...)` line (shapes,
errors, rate class); its `grant execute ... to <roles>` in sql/policies/NN_<domain>.sql; and one
row here. Path parameters are passed by name (`{id}` -> `p_id`), listed query parameters as
text (`?min_price=` -> `p_min_price`; the function validates and names the parameter in any
400), and a JSON body as `p_body jsonb`. Functions return json; a `page` route's function
returns (count, page, page_size, results) and gets the DRF envelope around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from api import specials
from api.specials import Special


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    tag: str
    query: tuple[str, ...] = ()
    body: bool = False
    status: int = 200
    page: bool = False
    etag: bool = False
    special: Special | None = None  # a Python step around the call (api/specials.py): tokens, uploads, files
    headers: tuple[str, ...] = ()  # request headers (or client_addr, public_url) passed to the function (p_<name>)

    @property
    def upload(self) -> bool:
        """Whether the request is a multipart file upload (field `file`) rather than JSON."""
        return self.special is specials.upload


LIST = ("page", "page_size")
PLACE = ("near", "radius_km", "bbox")  # the map: around a point, in a viewport
# The catalog search's filters, shared by the list and its facets.
FILTERS = (
    "category",
    "search",
    "min_price",
    "max_price",
    "location",
    "guests",
    "amenities",
    "host",
    "check_in",
    "check_out",
    *PLACE,
)

ROUTES: list[Route] = [
    # --- accounts (sql/functions/10_accounts.sql) --------------------------------------
    Route("POST", "/api/register/", "api.register", "auth", body=True, status=201),
    Route(
        "POST",
        "/api/token/",
        "api.login",
        "auth",
        body=True,
        special=specials.issue_tokens,
        headers=("client_addr",),
    ),
    Route("POST", "/api/token/refresh/", "api.token_refresh", "auth", body=True, special=specials.issue_tokens),
    Route("POST", "/api/token/revoke/", "api.token_revoke", "auth", body=True, status=204),
    Route("POST", "/api/token/revoke-all/", "api.token_revoke_all", "auth", status=204),
    Route("GET", "/api/users/me/", "api.me", "users"),
    Route("PATCH", "/api/users/me/", "api.me_update", "users", body=True),
    Route("DELETE", "/api/users/me/", "api.me_deactivate", "users", status=204),
    Route("PUT", "/api/users/me/photo/", "api.me_set_photo", "users", special=specials.upload),
    Route("DELETE", "/api/users/me/photo/", "api.me_remove_photo", "users", status=204),
    Route("POST", "/api/users/me/become-host/", "api.become_host", "users", special=specials.issue_tokens),
    Route("GET", "/api/users/", "api.user_list", "users", query=("search", "role", "active", *LIST), page=True),
    Route("PATCH", "/api/users/{id}/", "api.user_update", "users", body=True),
    # --- oauth (sql/functions/11_oauth.sql, api/oauth.py) --------------------------------
    Route("GET", "/api/auth/{provider}/login", "api.oauth_begin", "auth", status=302, special=specials.oauth_login),
    Route(
        "GET",
        "/api/auth/{provider}/callback",
        "api.oauth_sign_in",
        "auth",
        query=("code", "state", "error"),
        special=specials.oauth_callback,
    ),
    # --- catalog (sql/functions/20_categories.sql, 21_products.sql, 22_product_search.sql) ------
    Route("GET", "/api/categories/", "api.category_list", "catalog", query=LIST, page=True, etag=True),
    Route("POST", "/api/categories/", "api.category_create", "catalog", body=True, status=201),
    Route("GET", "/api/categories/{id}/", "api.category_get", "catalog", etag=True),
    Route("PUT", "/api/categories/{id}/", "api.category_replace", "catalog", body=True),
    Route("PATCH", "/api/categories/{id}/", "api.category_update", "catalog", body=True),
    Route("DELETE", "/api/categories/{id}/", "api.category_delete", "catalog", status=204),
    Route("GET", "/api/amenities/", "api.amenity_list", "catalog", query=LIST, page=True, etag=True),
    Route(
        "GET",
        "/api/products/",
        "api.product_list",
        "catalog",
        query=(
            "category",
            "search",
            "min_price",
            "max_price",
            "location",
            "guests",
            "amenities",
            "host",
            "ordering",
            *LIST,
            "check_in",
            "check_out",
            "cursor",
            *PLACE,
        ),
        page=True,
        etag=True,
    ),
    # Before /api/products/{id}/, which would take "facets" for an id.
    Route("GET", "/api/products/facets/", "api.product_facets", "catalog", query=FILTERS, etag=True),
    Route("POST", "/api/products/", "api.product_create", "catalog", body=True, status=201),
    Route("GET", "/api/products/{id}/", "api.product_get", "catalog", etag=True),
    Route("PUT", "/api/products/{id}/", "api.product_replace", "catalog", body=True),
    Route("PATCH", "/api/products/{id}/", "api.product_update", "catalog", body=True),
    Route("DELETE", "/api/products/{id}/", "api.product_delete", "catalog", status=204),
    Route(
        "POST",
        "/api/products/{id}/photos/",
        "api.product_photo_add",
        "catalog",
        special=specials.upload,
        status=201,
    ),
    Route(
        "DELETE",
        "/api/products/{id}/photos/{photo_id}/",
        "api.product_photo_delete",
        "catalog",
        status=204,
    ),
    # --- bookings (sql/functions/30_bookings.sql) --------------------------------------
    Route(
        "POST",
        "/api/bookings/",
        "api.booking_create",
        "bookings",
        body=True,
        status=201,
        headers=("idempotency_key",),
    ),
    Route(
        "GET",
        "/api/bookings/",
        "api.booking_list",
        "bookings",
        query=("as", "status", "product", "guest", "host", "from", "to", *LIST),
        page=True,
    ),
    Route("GET", "/api/bookings/{id}/", "api.booking_get", "bookings"),
    Route("POST", "/api/bookings/{id}/confirm/", "api.booking_confirm", "bookings"),
    Route("POST", "/api/bookings/{id}/cancel/", "api.booking_cancel", "bookings", body=True),
    Route("GET", "/api/products/{id}/availability/", "api.product_availability", "bookings", query=("from", "to")),
    Route("POST", "/api/products/{id}/blocked-dates/", "api.product_block_dates", "bookings", body=True, status=201),
    Route(
        "DELETE",
        "/api/products/{id}/blocked-dates/{block_id}/",
        "api.product_unblock_dates",
        "bookings",
        status=204,
    ),
    # --- calendar sync (sql/functions/32_calendar_sync.sql, api/calendars.py, api/worker.py) ----
    Route("GET", "/api/calendars/{token}.ics", "api.calendar_export", "calendars", special=specials.calendar),
    Route("GET", "/api/products/{id}/ical-export/", "api.product_ical_export", "calendars", headers=("public_url",)),
    Route(
        "POST",
        "/api/products/{id}/ical-export/rotate/",
        "api.product_ical_export_rotate",
        "calendars",
        headers=("public_url",),
    ),
    Route("GET", "/api/products/{id}/calendar-feeds/", "api.calendar_feed_list", "calendars", query=LIST, page=True),
    Route("POST", "/api/products/{id}/calendar-feeds/", "api.calendar_feed_add", "calendars", body=True, status=201),
    Route(
        "DELETE",
        "/api/products/{id}/calendar-feeds/{feed_id}/",
        "api.calendar_feed_delete",
        "calendars",
        status=204,
    ),
    # --- payments (sql/functions/40_payments.sql, api/payments.py, api/worker.py) --------
    Route("GET", "/api/currencies/", "api.currency_list", "payments", query=LIST, page=True, etag=True),
    Route("POST", "/api/exchange-rates/", "api.exchange_rate_set", "payments", body=True, status=201),
    Route(
        "POST",
        "/api/bookings/{id}/payments/",
        "api.payment_create",
        "payments",
        body=True,
        status=201,
        headers=("idempotency_key",),
        special=specials.pay,
    ),
    Route(
        "GET",
        "/api/payments/",
        "api.payment_list",
        "payments",
        query=("status", "provider", "booking", "currency", "from", "to", *LIST),
        page=True,
    ),
    Route("GET", "/api/payments/{id}/", "api.payment_get", "payments"),
    Route("POST", "/api/payments/{id}/capture/", "api.payment_capture", "payments", special=specials.capture),
    Route("POST", "/api/payments/{id}/refund/", "api.payment_refund", "payments", body=True, status=201),
    Route("POST", "/api/refunds/{id}/retry/", "api.refund_retry", "payments"),
    Route("GET", "/api/users/me/payout-account/", "api.payout_account_get", "payments"),
    Route(
        "POST",
        "/api/users/me/payout-account/",
        "api.payout_account_set",
        "payments",
        body=True,
        special=specials.payout_account,
    ),
    Route("GET", "/api/payouts/", "api.payout_list", "payments", query=("status", *LIST), page=True),
    Route("POST", "/api/payouts/{id}/retry/", "api.payout_retry", "payments"),
    Route("GET", "/api/disputes/", "api.dispute_list", "payments", query=("status", *LIST), page=True),
    Route("POST", "/api/webhooks/stripe/", "api.webhook_receive", "payments", special=specials.webhook),
    Route("POST", "/api/webhooks/paypal/", "api.webhook_receive", "payments", special=specials.webhook),
    # --- reviews (sql/functions/50_reviews.sql) --------------------------------------------
    Route(
        "GET",
        "/api/products/{id}/reviews/",
        "api.product_reviews",
        "reviews",
        query=("ordering", *LIST),
        page=True,
    ),
    Route("POST", "/api/bookings/{id}/review/", "api.review_create", "reviews", body=True, status=201),
    Route("GET", "/api/reviews/", "api.review_list", "reviews", query=("as", "hidden", *LIST), page=True),
    Route("PATCH", "/api/reviews/{id}/", "api.review_update", "reviews", body=True),
    Route("PUT", "/api/reviews/{id}/response/", "api.review_respond", "reviews", body=True),
    Route("POST", "/api/reviews/{id}/hide/", "api.review_hide", "reviews", body=True),
    Route("POST", "/api/reviews/{id}/unhide/", "api.review_unhide", "reviews"),
    # --- messages (sql/functions/51_messages.sql) ---------------------------------------
    Route("GET", "/api/conversations/", "api.conversation_list", "messages", query=LIST, page=True),
    Route("POST", "/api/conversations/", "api.conversation_start", "messages", body=True, status=201),
    Route("GET", "/api/conversations/unread/", "api.conversation_unread", "messages"),
    Route(
        "GET",
        "/api/conversations/{id}/messages/",
        "api.message_list",
        "messages",
        query=("before", "page_size"),
    ),
    Route("POST", "/api/conversations/{id}/messages/", "api.message_send", "messages", body=True, status=201),
    Route("POST", "/api/conversations/{id}/read/", "api.conversation_read", "messages"),
    Route("POST", "/api/messages/{id}/report/", "api.message_report", "messages", body=True, status=201),
    Route("GET", "/api/reports/messages/", "api.message_report_list", "messages", query=LIST, page=True),
    # --- notifications (sql/functions/60_notifications.sql, api/events.py, api/worker.py) ---
    Route(
        "GET",
        "/api/notifications/",
        "api.notification_list",
        "notifications",
        query=("unread", *LIST),
        page=True,
    ),
    Route("GET", "/api/notifications/unread-count/", "api.notification_unread_count", "notifications"),
    Route("POST", "/api/notifications/read-all/", "api.notification_read_all", "notifications"),
    Route("POST", "/api/notifications/{id}/read/", "api.notification_read", "notifications"),
    Route(
        "GET",
        "/api/notifications/stream",
        "api.notification_since",
        "notifications",
        special=specials.stream,
    ),
    Route(
        "GET",
        "/api/users/me/notification-preferences/",
        "api.notification_preferences_get",
        "notifications",
    ),
    Route(
        "PUT",
        "/api/users/me/notification-preferences/",
        "api.notification_preferences_set",
        "notifications",
        body=True,
    ),
    Route("GET", "/api/admin/notifications/dead/", "api.notification_dead", "notifications", query=LIST, page=True),
    Route("POST", "/api/admin/notifications/{id}/resend/", "api.notification_resend", "notifications"),
    # --- admin (sql/functions/70_admin.sql; the dashboard at /admin/ is api/admin.py) --------
    Route("GET", "/api/admin/overview/", "api.admin_overview", "admin"),
    Route("GET", "/api/admin/system/", "api.admin_system", "admin"),
    # --- reconciliation with the payment providers (sql/functions/43_reconciliation.sql) ------
    Route(
        "GET",
        "/api/admin/reconciliation/",
        "api.reconciliation_list",
        "admin",
        query=("state", "provider", *LIST),
        page=True,
    ),
    Route("POST", "/api/admin/reconciliation/", "api.reconciliation_run", "admin", body=True, status=202),
    Route("GET", "/api/admin/reconciliation/runs/", "api.reconciliation_runs", "admin", query=LIST, page=True),
    Route("POST", "/api/admin/reconciliation/{id}/resolve/", "api.reconciliation_resolve", "admin", body=True),
    Route("GET", "/api/admin/audit/", "api.audit_list", "admin", query=("actor", "table", "row", *LIST), page=True),
    Route(
        "GET",
        "/api/admin/products/",
        "api.admin_products",
        "admin",
        query=("search", "host", "category", "published", "min_price", "max_price", *LIST),
        page=True,
    ),
    Route("GET", "/api/admin/users/{id}/", "api.admin_user", "admin"),
    Route("POST", "/api/users/{id}/end-sessions/", "api.user_sessions_end", "admin"),
    Route("GET", "/api/admin/bookings/{id}/", "api.admin_booking", "admin"),
    Route("GET", "/api/admin/payments/{id}/", "api.admin_payment", "admin"),
]
