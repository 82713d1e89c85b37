#!/usr/bin/env bash
# Smoke test of a running Gust server with curl: health, readiness, sign in, create a chat,
# list chats (then delete the chat again).
#
#   GUST_EMAIL=me@example.com GUST_PASSWORD=... backend/test_api.sh [BASE_URL]
#                                           # default URL: $BASE_URL or http://localhost:8100
#
# It never creates the first account of a server (that account becomes the admin):
# - with GUST_EMAIL and GUST_PASSWORD it signs in to that existing account;
# - without them it registers a throwaway account (smoke-<time>@example.com) only where
#   registration is open to anyone AND the server already has its admin; anywhere else it
#   stops and says how to give it an account (the browser, or `python -m gust users create`).
# Every step prints what it did.
#
# Exits 0 when every step passed, 1 at the first failure (printing the server's answer).
# Needs only bash, curl, sed and grep.
set -euo pipefail

BASE_URL="${1:-${BASE_URL:-http://localhost:8100}}"
BASE_URL="${BASE_URL%/}"
EMAIL="${GUST_EMAIL:-}"
PASSWORD="${GUST_PASSWORD:-}"

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

if [ -n "$EMAIL" ] || [ -n "$PASSWORD" ]; then
  [ -n "$EMAIL" ] && [ -n "$PASSWORD" ] || fail "set both GUST_EMAIL and GUST_PASSWORD (or neither)"
  ok "using the existing account $EMAIL (GUST_EMAIL)"
else
  status=$(call GET /api/auth/providers)
  [ "$status" = 200 ] || fail "GET /api/auth/providers answered $status"
  if grep -q '"first_account":true' "$BODY"; then
    : >"$BODY"
    fail "this server has no account yet, and the first one becomes its admin: create it in the browser (open $BASE_URL) or with \`python -m gust users create --admin EMAIL\`, then run again with GUST_EMAIL and GUST_PASSWORD set"
  fi
  if ! grep -q '"registration":"open"' "$BODY"; then
    : >"$BODY"
    fail "registration is not open to anyone here: set GUST_EMAIL and GUST_PASSWORD to an existing account (\`python -m gust users create EMAIL\` makes one)"
  fi
  EMAIL="smoke-$(date +%s)-$RANDOM@example.com"
  PASSWORD="smoke-test-$RANDOM-$RANDOM"
  status=$(call POST /api/auth/register "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
  [ "$status" = 201 ] || fail "POST /api/auth/register answered $status"
  ok "POST /api/auth/register: registration is open and the server has its admin, so created the throwaway user $EMAIL (it stays; disable it with \`python -m gust users disable $EMAIL\`)"
fi

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
