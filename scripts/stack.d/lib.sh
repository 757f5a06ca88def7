#!/usr/bin/env bash
# Helpers of scripts/stack: logging, PIDs of the stack's services, the admin API calls.
# Sourced by scripts/stack; nothing here starts or stops a service.
# shellcheck shell=bash

say() { printf '[stack] %s\n' "$*" >&2; }

die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }

since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

# A service's log: named after it, except the two OVN databases'.
svc_log() {
    case $1 in
        ovn-nb | ovn-sb) echo "$LOG/ovsdb-server-${1#ovn-}.log" ;;
        *) echo "$LOG/$1.log" ;;
    esac
}

# The pidfile the daemon itself maintains (ovs/ovn/docker), if any.
svc_daemon_pidfile() {
    case $1 in
        ovsdb-server | ovs-vswitchd) echo "$OVS_RUN/$1.pid" ;;
        ovn-nb | ovn-sb) echo "$OVN_RUN/ovn${1#ovn-}_db.pid" ;;
        ovn-northd | ovn-controller) echo "$OVN_RUN/$1.pid" ;;
        dockerd) echo "$DOCKER_PIDFILE" ;;
        *) echo "" ;;
    esac
}

# A pattern the process's command line must contain (guards against PID reuse).
svc_cmd_pattern() {
    case $1 in
        ovn-nb) echo "ovnnb_db" ;;
        ovn-sb) echo "ovnsb_db" ;;
        keystone) echo "wsgi_server.py keystone" ;;
        neutron) echo "wsgi_server.py neutron" ;;
        *) echo "$1" ;;
    esac
}

pid_matches() { # pid pattern
    local pid=$1 pat=$2 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null) || return 1
    [[ $cmd == *"$pat"* ]]
}

# PID of a service we started and that is still alive, or nothing.
svc_pid() {
    local f=$PIDS/$1.pid pid
    [[ -r $f ]] || return 1
    pid=$(<"$f")
    pid_matches "$pid" "$(svc_cmd_pattern "$1")" || return 1
    echo "$pid"
}

record_pid() { # service: copy the daemon's own pidfile into ours
    local src pid
    src=$(svc_daemon_pidfile "$1")
    for _ in $(seq 100); do
        if [[ -s $src ]]; then
            pid=$(<"$src")
            if pid_matches "$pid" "$(svc_cmd_pattern "$1")"; then
                echo "$pid" >"$PIDS/$1.pid"
                return 0
            fi
        fi
        sleep 0.05
    done
    return 1
}

# A live process of this kind that we did not start (another stack, or the
# distribution's own service).
svc_foreign_pid() {
    local src pid
    src=$(svc_daemon_pidfile "$1")
    [[ -n $src && -s $src ]] || return 1
    pid=$(<"$src")
    pid_matches "$pid" "$(svc_cmd_pattern "$1")" || return 1
    [[ $(svc_pid "$1" 2>/dev/null) == "$pid" ]] && return 1
    echo "$pid"
}

wait_gone() { # pid timeout_s
    local pid=$1 n=$(( $2 * 20 ))
    for _ in $(seq "$n"); do
        [[ -d /proc/$pid ]] || return 0
        # a zombie child of ours counts as gone
        [[ $(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null) == Z ]] && return 0
        sleep 0.05
    done
    return 1
}

kill_svc() { # service [timeout]: TERM, wait, KILL -- only our recorded PID
    local pid
    pid=$(svc_pid "$1") || { rm -f "$PIDS/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "${2:-10}"; then
        say "$1 (pid $pid) ignored SIGTERM; killing"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || say "$1 (pid $pid) still there"
    fi
    rm -f "$PIDS/$1.pid"
}

fail() { # service message
    local svc=$1; shift
    printf '[stack] ERROR: %s: %s\n' "$svc" "$*" >&2
    local l
    l=$(svc_log "$svc")
    if [[ -s $l ]]; then
        printf '[stack] ---- last 40 lines of %s ----\n' "$l" >&2
        tail -n 40 "$l" >&2
        printf '[stack] ----\n' >&2
    fi
    say "the stack is partly up; inspect $LOG, then: scripts/stack down"
    exit 1
}

# Poll a readiness check; fail at once if the service's process is gone.
wait_svc() { # service timeout_s command...
    local svc=$1 timeout=$2 deadline
    deadline=$(awk -v a="$(now)" -v t="$timeout" 'BEGIN{printf "%.3f", a+t}')
    shift 2
    local pid
    until "$@" >/dev/null 2>&1; do
        # Just spawned, its /proc/PID/cmdline may still be the forking
        # shell's (not yet exec'd): only a recorded PID that is gone means
        # it exited.
        if ! svc_pid "$svc" >/dev/null; then
            pid=$(cat "$PIDS/$svc.pid" 2>/dev/null || true)
            [[ -n $pid && -r /proc/$pid/status ]] && ! grep -q '^State:.*zombie' "/proc/$pid/status" \
                || fail "$svc" "exited during start-up"
        fi
        if awk -v d="$deadline" -v n="$(now)" 'BEGIN{exit !(n>d)}'; then
            fail "$svc" "not ready after ${timeout} s"
        fi
        sleep 0.1
    done
}

mode() { cat "$STATE/mode" 2>/dev/null || echo noauth; }

services_for_mode() {
    local s
    for s in "${SERVICES[@]}"; do
        [[ $s == keystone && $1 != keystone ]] && continue
        echo "$s"
    done
}

secret() { # name: a password kept in the cache (survives `down`)
    local f=$CACHE/$1-password
    [[ -s $f ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f"; chmod 600 "$f"; }
    cat "$f"
}

# curl the Neutron API as admin: neutron_api METHOD PATH [JSON]
neutron_api() {
    local args=(-sS -X "$1" -H 'Content-Type: application/json' -w '\n%{http_code}')
    [[ -n ${OS_TOKEN_CACHE:-} ]] && args+=(-H "X-Auth-Token: $OS_TOKEN_CACHE")
    [[ -n ${3:-} ]] && args+=(-d "$3")
    curl "${args[@]}" "$NEUTRON_URL$2" 2>/dev/null
}

keystone_token() { # user password project -> token on stdout
    curl -sS -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$1\",\"domain\":{\"name\":\"Default\"},\"password\":\"$2\"}}},\"scope\":{\"project\":{\"name\":\"$3\",\"domain\":{\"name\":\"Default\"}}}}}" \
        "$KEYSTONE_URL/v3/auth/tokens" | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r'
}

admin_token_if_needed() {
    if [[ $(mode) == keystone ]]; then
        OS_TOKEN_CACHE=$(keystone_token admin "$(secret admin)" admin)
        [[ -n $OS_TOKEN_CACHE ]] || fail keystone "cannot get an admin token"
    else
        OS_TOKEN_CACHE=
    fi
}

# selftest_verdict NAME RESULT RC: the last words of a self-test's EXIT trap.
# PASSED only when every check ran (RESULT=0) and the shell exits cleanly;
# exits with RC, or 1 when the checks stopped short without an error status.
selftest_verdict() {
    if (($2 == 0 && $3 == 0)); then
        echo "$1: PASSED"
        exit 0
    fi
    echo "$1: FAILED"
    exit $(($3 ? $3 : 1))
}
