"""The route table: method, path, the one stored function it calls, who may call it.

Adding an endpoint is one row here plus one SQL function. Path parameters are passed
by name (`{id}` -> `p_id`), listed query parameters as text (`?min_price=` ->
`p_min_price`; the function validates and names the parameter in any 400), and a
JSON body as `p_body jsonb`. Functions return json; a `page` route's function
returns (count, page, page_size, results) and gets the DRF envelope around it.
Descriptions in the OpenAPI document are the functions' `comment on` text.
"""

from __future__ import annotations

from dataclasses import dataclass

from api import specials
from api.specials import Special

ANYONE = frozenset({"anon", "guest", "host", "admin"})
SIGNED_IN = frozenset({"guest", "host", "admin"})
HOSTS = frozenset({"host", "admin"})
ADMIN = frozenset({"admin"})
GUEST = frozenset({"guest"})
HOST = frozenset({"host"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    roles: frozenset[str]
    tag: str
    query: tuple[str, ...] = ()
    body: bool = False
    status: int = 200
    page: bool = False
    etag: bool = False
    special: Special | None = None  # a Python step around the call (api/specials.py): tokens, uploads, files
    headers: tuple[str, ...] = ()  # request headers passed to the function (p_<name>)

    @property
    def upload(self) -> bool:
        """Whether the request is a multipart file upload (field `file`) rather than JSON."""
        return self.special is specials.upload

    @property
    def rate_class(self) -> str | None:
        """The shared rate limit this route counts against (app_private.rate_limits); None: not limited."""
        if self.special is specials.webhook:
            return None  # the providers: they sign, retry and pace themselves
        if self.path == "/api/register/":
            return "signup"
        if self.upload:
            return "upload"
        if self.method == "GET":
            return "read"
        if self.tag in ("payments", "messages"):
            return "payment" if self.tag == "payments" else "message"
        return "write"


LIST = ("page", "page_size")

ROUTES: list[Route] = [
    # --- accounts (sql/functions/10_accounts.sql) --------------------------------------
    Route("POST", "/api/register/", "api.register", ANYONE, "auth", body=True, status=201),
    Route(
        "POST",
        "/api/token/",
        "api.login",
        ANYONE,
        "auth",
        body=True,
        special=specials.issue_tokens,
        headers=("client_addr",),
    ),
    Route("POST", "/api/token/refresh/", "api.token_refresh", ANYONE, "auth", body=True, special=specials.issue_tokens),
    Route("POST", "/api/token/revoke/", "api.token_revoke", ANYONE, "auth", body=True, status=204),
    Route("POST", "/api/token/revoke-all/", "api.token_revoke_all", SIGNED_IN, "auth", status=204),
    Route("GET", "/api/users/me/", "api.me", SIGNED_IN, "users"),
    Route("PATCH", "/api/users/me/", "api.me_update", SIGNED_IN, "users", body=True),
    Route("DELETE", "/api/users/me/", "api.me_deactivate", SIGNED_IN, "users", status=204),
    Route("PUT", "/api/users/me/photo/", "api.me_set_photo", SIGNED_IN, "users", special=specials.upload),
    Route("POST", "/api/users/me/become-host/", "api.become_host", GUEST, "users", special=specials.issue_tokens),
    Route("GET", "/api/users/", "api.users_list", ADMIN, "users", query=("search", "role", "active", *LIST), page=True),
    Route("PATCH", "/api/users/{id}/", "api.user_update", ADMIN, "users", body=True),
    # --- oauth (sql/functions/11_oauth.sql, api/oauth.py) --------------------------------
    Route(
        "GET", "/api/auth/{provider}/login", "api.oauth_begin", ANYONE, "auth", status=302, special=specials.oauth_login
    ),
    Route(
        "GET",
        "/api/auth/{provider}/callback",
        "api.oauth_sign_in",
        ANYONE,
        "auth",
        query=("code", "state", "error"),
        special=specials.oauth_callback,
    ),
    # --- catalog (sql/functions/20_categories.sql, 21_products.sql, 22_product_search.sql) ------
    Route("GET", "/api/categories/", "api.category_list", ANYONE, "catalog", query=LIST, page=True, etag=True),
    Route("POST", "/api/categories/", "api.category_create", ADMIN, "catalog", body=True, status=201),
    Route("GET", "/api/categories/{id}/", "api.category_get", ANYONE, "catalog", etag=True),
    Route("PUT", "/api/categories/{id}/", "api.category_replace", ADMIN, "catalog", body=True),
    Route("PATCH", "/api/categories/{id}/", "api.category_update", ADMIN, "catalog", body=True),
    Route("DELETE", "/api/categories/{id}/", "api.category_delete", ADMIN, "catalog", status=204),
    Route("GET", "/api/amenities/", "api.amenity_list", ANYONE, "catalog", query=LIST, page=True, etag=True),
    Route(
        "GET",
        "/api/products/",
        "api.product_list",
        ANYONE,
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
        ),
        page=True,
        etag=True,
    ),
    Route("POST", "/api/products/", "api.product_create", HOSTS, "catalog", body=True, status=201),
    Route("GET", "/api/products/{id}/", "api.product_get", ANYONE, "catalog", etag=True),
    Route("PUT", "/api/products/{id}/", "api.product_replace", HOSTS, "catalog", body=True),
    Route("PATCH", "/api/products/{id}/", "api.product_update", HOSTS, "catalog", body=True),
    Route("DELETE", "/api/products/{id}/", "api.product_delete", HOSTS, "catalog", status=204),
    Route(
        "POST",
        "/api/products/{id}/photos/",
        "api.product_photo_add",
        HOSTS,
        "catalog",
        special=specials.upload,
        status=201,
    ),
    Route(
        "DELETE",
        "/api/products/{id}/photos/{photo_id}/",
        "api.product_photo_delete",
        HOSTS,
        "catalog",
        status=204,
        special=specials.delete_file,
    ),
    # --- bookings (sql/functions/30_bookings.sql) --------------------------------------
    Route(
        "POST",
        "/api/bookings/",
        "api.booking_create",
        SIGNED_IN,
        "bookings",
        body=True,
        status=201,
        headers=("idempotency_key",),
    ),
    Route(
        "GET",
        "/api/bookings/",
        "api.bookings_list",
        SIGNED_IN,
        "bookings",
        query=("as", "status", "product", "guest", "host", "from", "to", *LIST),
        page=True,
    ),
    Route("GET", "/api/bookings/{id}/", "api.booking_get", SIGNED_IN, "bookings"),
    Route("POST", "/api/bookings/{id}/confirm/", "api.booking_confirm", SIGNED_IN, "bookings"),
    Route("POST", "/api/bookings/{id}/cancel/", "api.booking_cancel", SIGNED_IN, "bookings", body=True),
    Route(
        "GET", "/api/products/{id}/availability/", "api.product_availability", ANYONE, "bookings", query=("from", "to")
    ),
    Route(
        "POST", "/api/products/{id}/blocked-dates/", "api.product_block_dates", HOSTS, "bookings", body=True, status=201
    ),
    Route(
        "DELETE",
        "/api/products/{id}/blocked-dates/{block_id}/",
        "api.product_unblock_dates",
        HOSTS,
        "bookings",
        status=204,
    ),
    # --- payments (sql/functions/40_payments.sql, api/payments.py, api/worker.py) --------
    Route("GET", "/api/currencies/", "api.currency_list", ANYONE, "payments", query=LIST, page=True, etag=True),
    Route("POST", "/api/exchange-rates/", "api.exchange_rate_set", ADMIN, "payments", body=True, status=201),
    Route(
        "POST",
        "/api/bookings/{id}/payments/",
        "api.payment_create",
        SIGNED_IN,
        "payments",
        body=True,
        status=201,
        headers=("idempotency_key",),
        special=specials.pay,
    ),
    Route(
        "GET",
        "/api/payments/",
        "api.payments_list",
        SIGNED_IN,
        "payments",
        query=("status", "provider", "booking", "currency", "from", "to", *LIST),
        page=True,
    ),
    Route("GET", "/api/payments/{id}/", "api.payment_get", SIGNED_IN, "payments"),
    Route(
        "POST", "/api/payments/{id}/capture/", "api.payment_capture", SIGNED_IN, "payments", special=specials.capture
    ),
    Route("POST", "/api/payments/{id}/refund/", "api.payment_refund", ADMIN, "payments", body=True, status=201),
    Route("GET", "/api/users/me/payout-account/", "api.payout_account_get", HOST, "payments"),
    Route(
        "POST",
        "/api/users/me/payout-account/",
        "api.payout_account_set",
        HOST,
        "payments",
        body=True,
        special=specials.payout_account,
    ),
    Route("GET", "/api/payouts/", "api.payouts_list", HOSTS, "payments", query=("status", *LIST), page=True),
    Route("POST", "/api/payouts/{id}/retry/", "api.payout_retry", ADMIN, "payments"),
    Route("POST", "/api/webhooks/stripe/", "api.webhook_receive", ANYONE, "payments", special=specials.webhook),
    Route("POST", "/api/webhooks/paypal/", "api.webhook_receive", ANYONE, "payments", special=specials.webhook),
    # --- reviews (sql/functions/50_reviews.sql) --------------------------------------------
    Route(
        "GET",
        "/api/products/{id}/reviews/",
        "api.product_reviews",
        ANYONE,
        "reviews",
        query=("ordering", *LIST),
        page=True,
    ),
    Route("POST", "/api/bookings/{id}/review/", "api.review_create", SIGNED_IN, "reviews", body=True, status=201),
    Route("GET", "/api/reviews/", "api.reviews_list", SIGNED_IN, "reviews", query=("as", "hidden", *LIST), page=True),
    Route("PATCH", "/api/reviews/{id}/", "api.review_update", SIGNED_IN, "reviews", body=True),
    Route("PUT", "/api/reviews/{id}/response/", "api.review_respond", SIGNED_IN, "reviews", body=True),
    Route("POST", "/api/reviews/{id}/hide/", "api.review_hide", ADMIN, "reviews", body=True),
    Route("POST", "/api/reviews/{id}/unhide/", "api.review_unhide", ADMIN, "reviews"),
    # --- messages (sql/functions/51_messages.sql) ---------------------------------------
    Route("GET", "/api/conversations/", "api.conversations_list", SIGNED_IN, "messages", query=LIST, page=True),
    Route("POST", "/api/conversations/", "api.conversation_start", SIGNED_IN, "messages", body=True, status=201),
    Route("GET", "/api/conversations/unread/", "api.conversations_unread", SIGNED_IN, "messages"),
    Route(
        "GET",
        "/api/conversations/{id}/messages/",
        "api.messages_list",
        SIGNED_IN,
        "messages",
        query=("before", "page_size"),
    ),
    Route(
        "POST", "/api/conversations/{id}/messages/", "api.message_send", SIGNED_IN, "messages", body=True, status=201
    ),
    Route("POST", "/api/conversations/{id}/read/", "api.conversation_read", SIGNED_IN, "messages"),
    Route("POST", "/api/messages/{id}/report/", "api.message_report", SIGNED_IN, "messages", body=True, status=201),
    Route("GET", "/api/reports/messages/", "api.message_reports_list", ADMIN, "messages", query=LIST, page=True),
    # --- notifications (sql/functions/60_notifications.sql, api/events.py, api/worker.py) ---
    Route(
        "GET",
        "/api/notifications/",
        "api.notifications_list",
        SIGNED_IN,
        "notifications",
        query=("unread", *LIST),
        page=True,
    ),
    Route("GET", "/api/notifications/unread-count/", "api.notifications_unread_count", SIGNED_IN, "notifications"),
    Route("POST", "/api/notifications/read-all/", "api.notifications_read_all", SIGNED_IN, "notifications"),
    Route("POST", "/api/notifications/{id}/read/", "api.notification_read", SIGNED_IN, "notifications"),
    Route(
        "GET",
        "/api/notifications/stream",
        "api.notifications_since",
        SIGNED_IN,
        "notifications",
        special=specials.stream,
    ),
    Route(
        "GET",
        "/api/users/me/notification-preferences/",
        "api.notification_preferences_get",
        SIGNED_IN,
        "notifications",
    ),
    Route(
        "PUT",
        "/api/users/me/notification-preferences/",
        "api.notification_preferences_set",
        SIGNED_IN,
        "notifications",
        body=True,
    ),
    Route(
        "GET", "/api/admin/notifications/dead/", "api.notifications_dead", ADMIN, "notifications", query=LIST, page=True
    ),
    Route("POST", "/api/admin/notifications/{id}/resend/", "api.notification_resend", ADMIN, "notifications"),
    # --- admin (sql/functions/70_admin.sql; the dashboard at /admin/ is api/admin.py) --------
    Route("GET", "/api/admin/overview/", "api.admin_overview", ADMIN, "admin"),
    Route(
        "GET", "/api/admin/audit/", "api.audit_list", ADMIN, "admin", query=("actor", "table", "row", *LIST), page=True
    ),
    Route(
        "GET",
        "/api/admin/products/",
        "api.admin_products",
        ADMIN,
        "admin",
        query=("search", "host", "category", "published", "min_price", "max_price", *LIST),
        page=True,
    ),
    Route("GET", "/api/admin/users/{id}/", "api.admin_user", ADMIN, "admin"),
    Route("POST", "/api/users/{id}/end-sessions/", "api.user_sessions_end", ADMIN, "admin"),
    Route("GET", "/api/admin/bookings/{id}/", "api.admin_booking", ADMIN, "admin"),
    Route("GET", "/api/admin/payments/{id}/", "api.admin_payment", ADMIN, "admin"),
]
