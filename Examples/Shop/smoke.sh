#!/usr/bin/env bash
# Builds the Shop example and runs it as a user would, for a few seconds: `Shop start --daemon` with 2 workers on one
# port, real HTTP requests with curl (both workers answer; a stock change broadcast by one worker reaches the other;
# a messenger call to the agent), the access log, `Shop status`, `Shop stop`.
#   Examples/Shop/smoke.sh [PORT=18080]
set -euo pipefail
cd "$(dirname "$0")"
PORT=${1:-18080}
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
swift build
BIN="$(swift build --show-bin-path)/Shop"
WORK=$(mktemp -d /tmp/octopus-shop-XXXXXX)
cp -r config "$WORK/"
printf 'cluster:\n  listen: [%s]\n' "$PORT" > "$WORK/config/config.smoke.yaml"
cd "$WORK"
export OCTOPUS_ENV=smoke
finish() {
    status=$?
    "$BIN" stop --timeout 30s >/dev/null 2>&1 || true
    if [ $status -ne 0 ]; then
        echo "--- smoke test failed; logs/app.log:"; cat logs/app.log 2>/dev/null | tail -40
        echo "--- logs/octopus.stderr.log:"; cat logs/octopus.stderr.log 2>/dev/null | tail -20
    fi
    rm -rf "$WORK"
}
trap finish EXIT
fail() { echo "smoke: $*" >&2; exit 1; }

"$BIN" start --daemon
URL="http://127.0.0.1:$PORT"

# Which worker accepts a connection is the kernel's choice: many at once, so that both get some.
ask() { seq 1 32 | xargs -P 16 -I{} curl -sS "$URL/$1"; echo; }
seen=""
for _ in $(seq 1 50); do
    answers=$(ask hello)
    echo "$answers" | grep -v '^$' | grep -vq "^hello from worker " && fail "unexpected answer: $answers"
    seen="$seen $(echo "$answers" | awk '/^hello/ {print $4}' | sort -u | tr '\n' ' ')"
    echo "$seen" | grep -q " 1" && echo "$seen" | grep -q " 2" && break
done
echo "$seen" | grep -q " 1" && echo "$seen" | grep -q " 2" || fail "both workers should answer; seen:$seen"
echo "both workers answered on port $PORT"

[ "$(curl -fsS -X PUT "$URL/stock/apples/12")" = "apples set to 12" ] || fail "PUT /stock/apples/12"
# The change was broadcast: every worker's cache has it, whichever answers.
both=""
for _ in $(seq 1 50); do
    both="$both $(ask stock/apples | awk '/^apples: 12 \(answered by worker/ {print $6}' | sort -u | tr '\n' ' ')"
    echo "$both" | grep -q " 1" && echo "$both" | grep -q " 2" && break
    sleep 0.05
done
echo "$both" | grep -q " 1" && echo "$both" | grep -q " 2" || fail "both workers should know the stock; seen:$both"
echo "a stock change made in one worker reached both"

[ "$(curl -fsS "$URL/changes")" = "the agent has seen 1 stock change(s)" ] || fail "GET /changes"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/stock/pears")" = "404" ] || fail "GET /stock/pears should be 404"

"$BIN" status | grep -q "^worker  2" || fail "status should list worker 2"
"$BIN" stop --timeout 30s
grep -q "GET /hello 200" logs/access.log || fail "the access log has no GET /hello"
grep -q "PUT /stock/apples/12 200" logs/access.log || fail "the access log has no PUT"
grep -q "GET /stock/pears 404" logs/access.log || fail "the access log has no 404"
grep -q "removed 0 abandoned carts" logs/schedule.log || fail "the CleanCarts subscription did not run"
echo "smoke test passed: $(grep -c ' 200 ' logs/access.log) requests answered 200, access log and schedule as expected"
