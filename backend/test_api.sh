#!/usr/bin/env bash
# Smoke test of a running Gust server with curl: health, readiness, register, login,
# create a chat, list chats (then delete the chat again).
#
#   backend/test_api.sh [BASE_URL]          # default: $BASE_URL or http://localhost:8100
#
# With no account given it registers a new one (smoke-<time>@example.com), which works
# while registration is open (it is until the first account exists). On a server whose
# registration needs invites, point it at an existing account:
#
#   GUST_EMAIL=me@example.com GUST_PASSWORD=... backend/test_api.sh https://chat.example.com
#
# Exits 0 when every step passed, 1 at the first failure (printing the server's answer).
# Needs only bash, curl, sed and grep.
set -euo pipefail

BASE_URL="${1:-${BASE_URL:-http://localhost:8100}}"
BASE_URL="${BASE_URL%/}"
EMAIL="${GUST_EMAIL:-smoke-$(date +%s)-$RANDOM@example.com}"
PASSWORD="${GUST_PASSWORD:-smoke-test-$RANDOM-$RANDOM}"

BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT

# call METHOD PATH [JSON] -> prints the status code; the body is in $BODY
call() {
  local method=$1 path=$2 data=${3:-}
  local args=(-sS -o "$BODY" -w '%{http_code}' -X "$method" --max-time 30
              -H 'Accept: application/json' -H "X-Request-ID: smoke-$$-$RANDOM")
  [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  curl "${args[@]}" "$BASE_URL$path" || true  # on failure curl prints 000 itself
}

ok() { printf 'ok    %s\n' "$*"; }
fail() {
  printf 'FAIL  %s\n' "$1" >&2
  [ -s "$BODY" ] && { printf '      server said: ' >&2; head -c 600 "$BODY" >&2; echo >&2; }
  exit 1
}
# field NAME: the first string value of "NAME" in $BODY (compact JSON, as Gust writes it)
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$BODY" | head -n 1; }

echo "Gust smoke test against $BASE_URL"

status=$(call GET /health)
[ "$status" = 200 ] && grep -q '"status":"ok"' "$BODY" \
  || fail "GET /health answered $status (is the server running at $BASE_URL?)"
ok "GET /health: $(field status), version $(field version)"

status=$(call GET /health/ready)
case "$status" in
  200) ok "GET /health/ready: $(field status)" ;;
  503) fail "GET /health/ready answered 503: a required component is down" ;;
  *) fail "GET /health/ready answered $status" ;;
esac

status=$(call POST /api/auth/register "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
case "$status" in
  201) ok "POST /api/auth/register: created $EMAIL" ;;
  409) ok "POST /api/auth/register: $EMAIL exists already, logging in" ;;
  403)
    [ -n "${GUST_EMAIL:-}" ] \
      || fail "POST /api/auth/register answered 403: registration is not open here; set GUST_EMAIL and GUST_PASSWORD to an existing account"
    ok "POST /api/auth/register: registration is not open, using the existing account $EMAIL"
    ;;
  *) fail "POST /api/auth/register answered $status" ;;
esac

status=$(call POST /api/auth/login "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
[ "$status" = 200 ] || fail "POST /api/auth/login answered $status"
TOKEN=$(field access_token)
[ -n "$TOKEN" ] || fail "POST /api/auth/login returned no access_token"
ok "POST /api/auth/login: got an access token"

status=$(call GET /api/auth/me)
[ "$status" = 200 ] || fail "GET /api/auth/me answered $status with the new token"
ok "GET /api/auth/me: $(field email)"

status=$(call POST /api/chats '{"title":"Smoke test"}')
[ "$status" = 201 ] || fail "POST /api/chats answered $status"
CHAT_ID=$(field id)
[ -n "$CHAT_ID" ] || fail "POST /api/chats returned no id"
ok "POST /api/chats: created chat $CHAT_ID"

status=$(call GET '/api/chats?limit=50')
[ "$status" = 200 ] || fail "GET /api/chats answered $status"
grep -q "\"id\":\"$CHAT_ID\"" "$BODY" || fail "GET /api/chats does not list chat $CHAT_ID"
ok "GET /api/chats: lists chat $CHAT_ID"

status=$(call DELETE "/api/chats/$CHAT_ID")
[ "$status" = 204 ] || fail "DELETE /api/chats/$CHAT_ID answered $status"
ok "DELETE /api/chats/$CHAT_ID: deleted"

echo "all checks passed"
