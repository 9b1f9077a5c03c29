# shellcheck shell=bash
#
# lib.sh - harness for tollgate's integration tests: a private Postfix,
# an SMTP sink as its relayhost, and tollgate-milter, all on loopback.
#
# Source it from a bash script running with `set -euo pipefail`, then:
#
#   tg_init                      scratch dir, cleanup trap, watchdog
#   tg_start_sink                sink.py on 127.0.0.1:$TG_SINK_PORT
#   tg_start_milter              tollgate-milter on 127.0.0.1:$TG_MILTER_PORT
#   tg_start_postfix [--no-milter] [--sasl] [--policy PORT]
#                                Postfix; smtpd on 127.0.0.1:$TG_SMTP_PORT;
#                                --policy: check_policy_service on PORT
#   tg_send SRC FROM TO FILE...  SMTP from SRC (127.0.0.1 internal,
#                                127.0.0.2 outside); env TG_SEND_ARGS adds
#                                tgmail.py send options (--auth, --expect)
#   tg_submit FROM TO FILE       local submission through Postfix sendmail
#   tg_wait_sink N               wait until the sink holds N messages;
#                                sets TG_SINK_MSGS (all paths) and
#                                TG_LAST_MSG (the N-th)
#   tg_fail "why"                print why plus log tails, exit 1
#
# Everything it starts runs under the scratch dir and is stopped on exit,
# on failure and on timeout (TG_TIMEOUT seconds, default 300).  Set
# TG_KEEP=1 to keep the scratch dir for a look afterwards.
#
# Messages in the sink keep the CRLF line ends Postfix sent (see sink.py).
#
# Environment: abs_top_srcdir and abs_top_builddir (set by make check);
# BUILDDIR overrides where tollgate-milter is looked for; TG_MILTER_WRAPPER
# runs the milter under a tool, e.g. "valgrind --error-exitcode=9".

TG_PY=/usr/bin/python3
TG_SRCDIR=${abs_top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TG_BUILDDIR=${BUILDDIR:-${abs_top_builddir:-$TG_SRCDIR}}
TG_IT=$TG_SRCDIR/tests/integration
TG_DATA=$TG_IT/data
TG_ZONE=$TG_DATA/zone.txt		# DKIM keys
TG_AUTH_ZONE=$TG_DATA/auth-zone.txt	# SPF and DMARC records
TG_MILTER_BIN=${TG_MILTER_BIN:-$TG_BUILDDIR/milters/pipeline/tollgate-milter}
TG_DECISION_RE=${TG_DECISION_RE:-'decision stage='}
# Under ASan: third-party leaks to suppress (lsan.supp; none at present),
# with full malloc stacks since libcrypto has no frame pointers.
TG_LSAN_OPTIONS="suppressions=$TG_IT/lsan.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

TG_SCRATCH=
TG_PIDS=()
TG_POSTFIX_DIR=
TG_MILTER_PID=
TG_SINK_MSGS=()
TG_LAST_MSG=

tg_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# tg_init - scratch dir, traps, overall watchdog
tg_init() {
	TG_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-it.XXXXXX")
	# Postfix daemons run as user postfix and must reach the queue.
	chmod 755 "$TG_SCRATCH"
	trap tg_cleanup EXIT
	trap 'tg_log "interrupted"; exit 1' INT TERM HUP
	local me=$BASHPID timeout=${TG_TIMEOUT:-300}
	(
		sp=
		trap 'kill "$sp" 2>/dev/null; exit 0' TERM
		sleep "$timeout" &
		sp=$!
		wait "$sp"
		echo "${0##*/}: timeout after ${timeout}s" >&2
		kill -TERM "$me" 2>/dev/null
	) >/dev/null &
	TG_PIDS+=($!)
	export TG_SCRATCH
}

# tg_cleanup - stop Postfix, the milter and the helpers; remove scratch
tg_cleanup() {
	local rc=$? pid
	set +e
	trap - EXIT INT TERM HUP
	if [[ -n $TG_POSTFIX_DIR ]]; then
		tg_stop_postfix
	fi
	if [[ -n $TG_MILTER_PID ]]; then
		tg_stop_milter || rc=1
	fi
	for pid in "${TG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${TG_PIDS[@]}"; do
		tg_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
	done
	if [[ $rc -ne 0 && -n $TG_SCRATCH ]]; then
		tg_dump_logs
	fi
	if [[ -n $TG_SCRATCH && ${TG_KEEP:-0} != 1 ]]; then
		rm -rf "$TG_SCRATCH"
	elif [[ -n $TG_SCRATCH ]]; then
		tg_log "kept $TG_SCRATCH"
	fi
	exit "$rc"
}

# tg_wait_gone PID SECONDS - true once PID has exited
tg_wait_gone() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

tg_dump_logs() {
	local f
	for f in "$TG_SCRATCH/postfix.log" "$TG_SCRATCH/milter.log" \
	    "$TG_SCRATCH/sink.log"; do
		[[ -s $f ]] || continue
		echo "---- last lines of ${f##*/}" >&2
		tail -n 40 "$f" >&2
	done
}

# tg_fail MESSAGE - report and exit 1 (the EXIT trap prints log tails)
tg_fail() {
	tg_log "FAIL: $*"
	exit 1
}

tg_pass() { tg_log "ok: $*"; }

# tg_free_port - print a TCP port that is free on loopback right now
tg_free_port() {
	"$TG_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# tg_wait_port PORT SECONDS [PID] - wait until 127.0.0.1:PORT accepts
tg_wait_port() {
	local port=$1 secs=$2 pid=${3:-} i
	for ((i = 0; i < secs * 10; i++)); do
		if "$TG_PY" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.close()' "$port" 2>/dev/null; then
			return 0
		fi
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ sink

tg_start_sink() {
	TG_SINK_PORT=$(tg_free_port)
	TG_SINK_DIR=$TG_SCRATCH/sink
	mkdir -p "$TG_SINK_DIR"
	"$TG_PY" "$TG_IT/sink.py" --port "$TG_SINK_PORT" --dir "$TG_SINK_DIR" \
	    --watch-pid $$ --max-seconds "${TG_TIMEOUT:-300}" \
	    >"$TG_SCRATCH/sink.log" 2>&1 &
	TG_PIDS+=($!)
	tg_wait_port "$TG_SINK_PORT" 10 $! || tg_fail "sink did not start"
	export TG_SINK_PORT TG_SINK_DIR
}

# tg_sink_count - number of complete messages in the sink
tg_sink_count() {
	local n=0 f
	for f in "$TG_SINK_DIR"/*.eml; do
		[[ -e $f ]] && n=$((n + 1))
	done
	echo "$n"
}

# tg_wait_sink N [SECONDS] - wait for N messages; sets TG_SINK_MSGS
tg_wait_sink() {
	local want=$1 secs=${2:-20} i n
	for ((i = 0; i < secs * 10; i++)); do
		n=$(tg_sink_count)
		if ((n >= want)); then
			TG_SINK_MSGS=("$TG_SINK_DIR"/*.eml)
			TG_LAST_MSG=${TG_SINK_MSGS[want - 1]}
			return 0
		fi
		sleep 0.1
	done
	tg_log "postfix queue:"
	tg_postqueue >&2 || true
	tg_fail "sink has $n message(s) after ${secs}s, want $want"
}

# --------------------------------------------------------------- postfix

tg_postconf() { postconf -c "$TG_POSTFIX_DIR" "$@"; }
tg_postqueue() { "$TG_SCRATCH/postfix/bin/postqueue" -c "$TG_POSTFIX_DIR" -p; }

# tg_start_postfix [--no-milter] [--sasl] [--policy PORT] - private
# instance on loopback
tg_start_postfix() {
	local milter=yes sasl=no policy= arg
	while (($# > 0)); do
		arg=$1
		shift
		case $arg in
		--no-milter) milter=no ;;
		--sasl) sasl=yes ;;
		--policy) policy=${1:?--policy needs a port}; shift ;;
		*) tg_fail "tg_start_postfix: unknown option $arg" ;;
		esac
	done
	[[ -n ${TG_SINK_PORT:-} ]] || tg_fail "start the sink before Postfix"
	if [[ $milter == yes && -z ${TG_MILTER_PORT:-} ]]; then
		tg_fail "start the milter before Postfix (or pass --no-milter)"
	fi
	local pf=$TG_SCRATCH/postfix
	TG_POSTFIX_DIR=$pf/etc
	TG_SMTP_PORT=$(tg_free_port)
	mkdir -p "$pf/etc" "$pf/queue" "$pf/data" "$pf/bin"
	chown postfix "$pf/data"
	if [[ -f /etc/postfix/master.cf ]]; then
		cp /etc/postfix/master.cf "$pf/etc/master.cf"
	else
		cp /usr/share/postfix/master.cf.dist "$pf/etc/master.cf"
	fi
	# postdrop is set-gid; run as a set-gid program it trusts only the
	# default config dir or those listed in the system main.cf's
	# alternate_config_directories.  A private, non-set-gid copy, run as
	# root, trusts MAIL_CONFIG, so the system's config stays untouched.
	# postfix-script runs its helpers from command_directory: link the rest.
	local cmd
	for cmd in postalias postcat postconf postfix postkick postlock \
	    postlog postmap postmulti postsuper sendmail; do
		ln -s "/usr/sbin/$cmd" "$pf/bin/$cmd"
	done
	install -m 755 /usr/sbin/postdrop "$pf/bin/postdrop"
	install -m 755 /usr/sbin/postqueue "$pf/bin/postqueue"
	cat >"$pf/etc/main.cf" <<-EOF
		# private Postfix for tollgate integration tests (lib.sh)
		compatibility_level = 3.6
		config_directory = $pf/etc
		queue_directory = $pf/queue
		data_directory = $pf/data
		command_directory = $pf/bin
		daemon_directory = /usr/lib/postfix/sbin
		meta_directory = /etc/postfix
		shlib_directory = /usr/lib/postfix
		mail_owner = postfix
		setgid_group = postdrop
		syslog_name = postfix-tollgate-test
		maillog_file = $TG_SCRATCH/postfix.log
		maillog_file_prefixes = $TG_SCRATCH
		myhostname = mta.test.example
		mydomain = test.example
		myorigin = \$myhostname
		mydestination =
		local_recipient_maps =
		alias_maps =
		alias_database =
		relay_domains =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		relayhost = [127.0.0.1]:$TG_SINK_PORT
		smtp_host_lookup = native
		smtp_dns_support_level = disabled
		lmtp_host_lookup = native
		smtpd_peername_lookup = no
		smtp_tls_security_level = none
		smtpd_tls_security_level = none
		smtpd_banner = \$myhostname ESMTP
		biff = no
		queue_run_delay = 1s
		minimal_backoff_time = 1s
		maximal_backoff_time = 2s
		delay_warning_time = 0
		bounce_queue_lifetime = 1h
		maximal_queue_lifetime = 1h
		in_flow_delay = 0
		smtp_connect_timeout = 5s
		milter_protocol = 6
		milter_default_action = tempfail
		milter_connect_timeout = 5s
		milter_command_timeout = 10s
		milter_content_timeout = 20s
	EOF
	if [[ $milter == yes ]]; then
		tg_postconf -e \
		    "smtpd_milters = inet:127.0.0.1:$TG_MILTER_PORT" \
		    "non_smtpd_milters = inet:127.0.0.1:$TG_MILTER_PORT"
	fi
	if [[ $sasl == yes ]]; then
		tg_setup_sasl
	fi
	# 127.0.0.2, the "outside" client, is in mynetworks here: the policy
	# service goes before permit_mynetworks, and policyd's own exempt
	# list says who is inside.
	if [[ -n $policy ]]; then
		tg_postconf -e "smtpd_recipient_restrictions =\
 permit_sasl_authenticated,\
 check_policy_service inet:127.0.0.1:$policy,\
 permit_mynetworks, reject_unauth_destination"
	fi
	# master.cf: smtpd only on our loopback port, nothing chrooted
	tg_postconf -M# smtp/inet
	tg_postconf -M "127.0.0.1:$TG_SMTP_PORT/inet=127.0.0.1:$TG_SMTP_PORT inet n - n - - smtpd"
	tg_postconf -F '*/*/chroot = n'
	timeout 60 postfix -c "$TG_POSTFIX_DIR" start \
	    >"$TG_SCRATCH/postfix-start.log" 2>&1 || {
		# postfix(1) writes errors to stderr only when that is a tty
		script -qec "postfix -c '$TG_POSTFIX_DIR' check" /dev/null >&2 || true
		cat "$TG_SCRATCH/postfix-start.log" >&2
		tg_fail "postfix start failed"
	}
	tg_wait_port "$TG_SMTP_PORT" 20 ||
	    tg_fail "postfix smtpd does not listen on $TG_SMTP_PORT"
	export TG_POSTFIX_DIR TG_SMTP_PORT
}

# tg_setup_sasl - Cyrus SASL with a sasldb in the scratch dir.
# Users: alice@example.com / alicepw.  The milter sees {auth_authen}.
tg_setup_sasl() {
	# Debian's smtpd reads smtpd.conf from $config_directory/sasl
	local sd=$TG_POSTFIX_DIR/sasl
	mkdir -p "$sd"
	TG_SASL_USER=alice@example.com
	TG_SASL_PASS=alicepw
	echo "$TG_SASL_PASS" | saslpasswd2 -f "$sd/sasldb2" -p -c \
	    -u example.com alice
	# smtpd runs as user postfix and must read the db
	chown postfix "$sd/sasldb2"
	chmod 600 "$sd/sasldb2"
	cat >"$sd/smtpd.conf" <<-EOF
		pwcheck_method: auxprop
		auxprop_plugin: sasldb
		sasldb_path: $sd/sasldb2
		mech_list: PLAIN LOGIN
	EOF
	tg_postconf -e \
	    "smtpd_sasl_auth_enable = yes" \
	    "smtpd_sasl_type = cyrus" \
	    "smtpd_sasl_path = smtpd" \
	    "cyrus_sasl_config_path = $sd" \
	    "smtpd_sasl_security_options = noanonymous" \
	    "smtpd_tls_auth_only = no"
	export TG_SASL_USER TG_SASL_PASS
}

# tg_stop_postfix - stop the private instance; kill -9 what stays
tg_stop_postfix() {
	local dir=$TG_POSTFIX_DIR pidfile master kids
	TG_POSTFIX_DIR=
	pidfile=$(postconf -c "$dir" -h queue_directory)/pid/master.pid
	master=$(tr -dc 0-9 <"$pidfile" 2>/dev/null || true)
	timeout 30 postfix -c "$dir" stop >/dev/null 2>&1 || true
	[[ -n $master ]] || return 0
	tg_wait_gone "$master" 10 && return 0
	kids=$(ps -o pid= --ppid "$master" 2>/dev/null || true)
	# shellcheck disable=SC2086
	kill -KILL "$master" $kids 2>/dev/null || true
	tg_postfix_leftovers_kill "$dir"
}

# Children of a killed master are re-parented; find them by config dir
# in their command line (Postfix daemons get "-c" only when not default,
# so look at their environment's MAIL_CONFIG instead).
tg_postfix_leftovers_kill() {
	local dir=$1 p
	for p in /proc/[0-9]*; do
		if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
		    grep -qxF "MAIL_CONFIG=$dir"; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
}

# tg_submit FROM TO FILE - local submission via this instance's sendmail
tg_submit() {
	local from=$1 to=$2 file=$3
	MAIL_CONFIG=$TG_POSTFIX_DIR timeout 30 /usr/sbin/sendmail \
	    -C "$TG_POSTFIX_DIR" -f "$from" -- "$to" <"$file" ||
	    tg_fail "sendmail submission of $file failed"
}

# ---------------------------------------------------------------- milter

# tg_write_milter_conf DIR PORT - shipped conf.d plus the test overlay
tg_write_milter_conf() {
	local dir=$1 port=$2 f
	mkdir -p "$dir" "$TG_SCRATCH/keys"
	for f in "$TG_SRCDIR"/conf.d/*.conf; do
		[[ -e $f ]] && cp "$f" "$dir/"
	done
	# the milter refuses keys that others may read
	install -m 600 "$TG_DATA/example.com.rsa2024.key" "$TG_SCRATCH/keys/rsa.key"
	install -m 600 "$TG_DATA/example.com.ed2024.key" "$TG_SCRATCH/keys/ed.key"
	cat "$TG_ZONE" "$TG_AUTH_ZONE" >"$TG_SCRATCH/milter-zone.txt"
	cat >"$dir/50-test.conf" <<-EOF
		# written by tests/integration/lib.sh
		[milter]
		socket = inet:$port@127.0.0.1
		[core]
		authserv_id = mx.test.example
		internal_networks = 127.0.0.1/32 ::1/128
		# tests run as root; privileges.test covers the user switch
		allow_root = yes
		[dns]
		offline = yes
		local_data = $TG_SCRATCH/milter-zone.txt
		[dkim]
		keys = example.com:rsa2024:$TG_SCRATCH/keys/rsa.key example.com:ed2024:$TG_SCRATCH/keys/ed.key
	EOF
	if [[ -n ${TG_EXTRA_CONF:-} ]]; then
		printf '%s\n' "$TG_EXTRA_CONF" >"$dir/60-extra.conf"
	fi
}

# tg_start_milter - run tollgate-milter in the foreground, log to a file
tg_start_milter() {
	[[ -x $TG_MILTER_BIN ]] || tg_fail "no milter binary at $TG_MILTER_BIN (build first)"
	TG_MILTER_PORT=$(tg_free_port)
	TG_MILTER_CONF=$TG_SCRATCH/milter.d
	TG_MILTER_LOG=$TG_SCRATCH/milter.log
	tg_write_milter_conf "$TG_MILTER_CONF" "$TG_MILTER_PORT"
	# shellcheck disable=SC2086
	LSAN_OPTIONS=$TG_LSAN_OPTIONS \
	    ${TG_MILTER_WRAPPER:-} "$TG_MILTER_BIN" -f -c "$TG_MILTER_CONF" \
	    -p "inet:$TG_MILTER_PORT@127.0.0.1" </dev/null \
	    >>"$TG_MILTER_LOG" 2>&1 &
	TG_MILTER_PID=$!
	if ! tg_wait_port "$TG_MILTER_PORT" "${TG_MILTER_START_SECS:-10}" "$TG_MILTER_PID"; then
		tg_fail "tollgate-milter did not listen on $TG_MILTER_PORT"
	fi
	export TG_MILTER_PORT TG_MILTER_LOG TG_MILTER_CONF
}

# tg_stop_milter - SIGTERM, wait, then check for sanitizer reports
tg_stop_milter() {
	local pid=$TG_MILTER_PID rc=0
	TG_MILTER_PID=
	kill -TERM "$pid" 2>/dev/null || true
	if ! tg_wait_gone "$pid" 15; then
		tg_log "tollgate-milter did not stop on SIGTERM; killed"
		kill -KILL "$pid" 2>/dev/null || true
		rc=1
	fi
	wait "$pid" 2>/dev/null || true
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|ERROR SUMMARY: [1-9]' \
	    "$TG_MILTER_LOG" 2>/dev/null; then
		tg_log "sanitizer/valgrind report in milter log:"
		grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|ERROR SUMMARY' \
		    "$TG_MILTER_LOG" | head -60 >&2
		rc=1
	fi
	return $rc
}

# tg_decisions - number of decision lines the milter has logged
tg_decisions() {
	grep -cE "$TG_DECISION_RE" "$TG_MILTER_LOG" 2>/dev/null || true
}

# tg_expect_decisions N - wait (bounded) until N decision lines exist
tg_expect_decisions() {
	local want=$1 i n=0
	for ((i = 0; i < 50; i++)); do
		n=$(tg_decisions)
		((n >= want)) && break
		sleep 0.1
	done
	[[ $n -eq $want ]] || tg_fail "milter logged $n decision line(s), want $want"
}

# ------------------------------------------------------------------ mail

# tg_send SRC FROM TO FILE... - SMTP to our smtpd from source address SRC
tg_send() {
	local src=$1 from=$2 to=$3
	shift 3
	# shellcheck disable=SC2086
	timeout 120 "$TG_PY" "$TG_IT/tgmail.py" send \
	    --server "127.0.0.1:$TG_SMTP_PORT" --source "$src" \
	    --from "$from" --to "$to" ${TG_SEND_ARGS:-} "$@" ||
	    tg_fail "sending $* from $src was not accepted as expected"
}

# tg_header FILE NAME - unfolded values of header NAME, one per line
tg_header() { "$TG_PY" "$TG_IT/tgmail.py" header "$1" "$2" || true; }

# tg_make_msg FILE FROM TO SUBJECT [BODY] - write a simple test message
tg_make_msg() {
	local file=$1 from=$2 to=$3 subj=$4 body=${5:-}
	[[ -n $body ]] || body="Hello from the tollgate integration tests.
This line is here so the body has more than one line."
	{
		printf 'From: %s\n' "$from"
		printf 'To: %s\n' "$to"
		printf 'Subject: %s\n' "$subj"
		printf 'Date: %s\n' "$(LC_ALL=C date -R)"
		printf 'Message-ID: <%s.%s@test.example>\n' "$RANDOM$RANDOM" "$$"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=us-ascii\n'
		printf '\n%s\n' "$body"
	} >"$file"
}

# ------------------------------------------------------------ verifiers

# tg_start_dns - serve zone.txt on 127.X.Y.Z:53 (a resolv.conf cannot
# name a port); sets TG_DNS_ADDR.  Used by Mail::DKIM and, inside a
# private mount namespace with its own /etc/resolv.conf, by opendkim.
tg_start_dns() {
	local try addr pid i
	for ((try = 0; try < 5; try++)); do
		addr=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).53
		rm -f "$TG_SCRATCH/dns.ready"
		"$TG_PY" "$TG_IT/tgmail.py" dns-serve --zone "$TG_ZONE" \
		    --addr "$addr" --port 53 --ready-file "$TG_SCRATCH/dns.ready" \
		    --watch-pid $$ --max-seconds "${TG_TIMEOUT:-300}" \
		    >>"$TG_SCRATCH/dns.log" 2>&1 &
		pid=$!
		for ((i = 0; i < 50; i++)); do
			if [[ -e $TG_SCRATCH/dns.ready ]]; then
				TG_PIDS+=("$pid")
				TG_DNS_ADDR=$addr
				printf 'nameserver %s\noptions attempts:2 timeout:2\n' \
				    "$addr" >"$TG_SCRATCH/resolv.conf"
				export TG_DNS_ADDR
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
	done
	tg_fail "could not start the test DNS server"
}

# tg_verify_dkimpy FILE [MIN_SIGS] - every signature passes with dkimpy
tg_verify_dkimpy() {
	"$TG_PY" "$TG_IT/tgmail.py" dkim-verify --zone "$TG_ZONE" \
	    --min-sigs "${2:-1}" "$1"
}

# tg_verify_mail_dkim FILE [MIN_PASS] - Mail::DKIM against tg_start_dns
tg_verify_mail_dkim() {
	perl "$TG_IT/mdkim_verify.pl" --dns "$TG_DNS_ADDR:53" \
	    ${2:+--min-pass "$2"} "$1"
}

# tg_verify_opendkim FILE - opendkim-testmsg, its resolver pointed at
# tg_start_dns through a bind-mounted /etc/resolv.conf in a private
# mount namespace (the system's file is never touched).  opendkim-testmsg
# prints nothing and exits 0 when the message verifies.
tg_verify_opendkim() {
	timeout 30 unshare -m sh -c \
	    'mount --bind "$1" /etc/resolv.conf && exec opendkim-testmsg' \
	    sh "$TG_SCRATCH/resolv.conf" <"$1"
}

# tg_only_signature IN N OUT - copy IN keeping only its N-th (0-based)
# DKIM-Signature, so a verifier that reports one overall result checks
# one signature at a time
tg_only_signature() {
	"$TG_PY" "$TG_IT/tgmail.py" keep-sig "$1" "$2" "$3"
}

# -------------------------------------------------------------- sendmail

# tg_start_sendmail - a private Sendmail (sendmail.sh: Debian's packages
# unpacked into a cache, never installed) on 127.0.0.1:$TG_SM_PORT with
# tollgate-milter as its INPUT_MAIL_FILTER, relaying to the sink; start
# the sink and the milter first.  It runs in private UTS and mount
# namespaces: its host name is mta.test.example and /etc/hosts and
# /etc/resolv.conf are bind-mounted from the scratch dir, so it neither
# waits to qualify the host name nor asks any DNS server.  Sets
# TG_SMTP_PORT to the same port so tg_send talks to Sendmail.
# TG_SENDMAIL_CACHE: where the packages are unpacked (default under the
# build dir; ./quickstart setup fills it).
tg_start_sendmail() {
	local cache=${TG_SENDMAIL_CACHE:-$TG_BUILDDIR/tests/integration/sendmail-cache}
	local dir=$TG_SCRATCH/sendmail bin
	[[ -n ${TG_SINK_PORT:-} ]] || tg_fail "start the sink before Sendmail"
	[[ -n ${TG_MILTER_PORT:-} ]] || tg_fail "start the milter before Sendmail"
	"$TG_IT/sendmail.sh" fetch "$cache" || tg_fail "cannot fetch Sendmail"
	TG_SM_PORT=$(tg_free_port)
	mkdir -p "$dir"
	"$TG_IT/sendmail.sh" mkcf "$cache" "$dir" "$TG_SM_PORT" "$TG_SINK_PORT" \
	    "inet:$TG_MILTER_PORT@127.0.0.1" || tg_fail "cannot build sendmail.cf"
	# our name is not 127.0.0.1: [127.0.0.1] (the sink) in class w would
	# make the smart host "local"
	printf '127.0.0.1\tlocalhost\n127.0.0.3\tmta.test.example mta\n' >"$dir/etc-hosts"
	printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' \
	    >"$dir/resolv.conf"
	bin=$("$TG_IT/sendmail.sh" bin "$cache")
	LD_LIBRARY_PATH=$cache/root/usr/lib/x86_64-linux-gnu \
	    unshare -mu sh -c 'mount --bind "$1" /etc/hosts &&
	    mount --bind "$2" /etc/resolv.conf && hostname mta.test.example &&
	    shift 2 && exec "$@"' sh "$dir/etc-hosts" "$dir/resolv.conf" \
	    "$bin" -C "$dir/sendmail.cf" -bD -X "$dir/traffic.log" \
	    </dev/null >"$TG_SCRATCH/sendmail.log" 2>&1 &
	TG_PIDS+=($!)
	tg_wait_port "$TG_SM_PORT" 20 $! || {
		cat "$TG_SCRATCH/sendmail.log" >&2
		tg_fail "sendmail does not listen on $TG_SM_PORT"
	}
	TG_SMTP_PORT=$TG_SM_PORT
	export TG_SM_PORT TG_SMTP_PORT
}
