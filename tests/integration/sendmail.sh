#!/usr/bin/env bash
# sendmail.sh - a private Sendmail for the integration tests, without
# installing it: Debian's sendmail-bin conflicts with the postfix
# package the other tests need, so its packages are only downloaded
# (apt-get download, from the configured Debian mirror) into a cache and
# unpacked with dpkg-deb -x; nothing is installed and no system file is
# touched.
#
#   sendmail.sh fetch CACHE
#       download sendmail-bin, sendmail-base, sendmail-cf and libwrap0
#       (sendmail links libwrap; postfix does not pull it in) into
#       CACHE/debs and unpack them into CACHE/root.  Does nothing when
#       CACHE/root already holds the binary.  Run by ./quickstart setup
#       (CACHE = BUILD/tests/integration/sendmail-cache) and, when the
#       cache is missing, by sendmail.test.
#   sendmail.sh mkcf CACHE DIR SMTP_PORT SINK_PORT MILTER_SPEC
#       write DIR/sendmail.mc (the shape of docs/sendmail.mc, with
#       private paths) and build DIR/sendmail.cf with m4 from
#       sendmail-cf's macros: a daemon on 127.0.0.1:SMTP_PORT using
#       tollgate-milter at MILTER_SPEC (inet:PORT@127.0.0.1) through
#       INPUT_MAIL_FILTER, relaying everything to the SMTP sink on
#       127.0.0.1:SINK_PORT; queue, pid and status files under DIR; no
#       DNS (host names from DIR/hosts).
#   sendmail.sh bin CACHE
#       print the sendmail binary's path.  Run it with
#       LD_LIBRARY_PATH=CACHE/root/usr/lib/x86_64-linux-gnu (libwrap).
set -euo pipefail

SM_PACKAGES=(sendmail-bin sendmail-base sendmail-cf libwrap0)

die() { printf 'sendmail.sh: %s\n' "$*" >&2; exit 1; }

sm_bin() { printf '%s/root/usr/libexec/sendmail/sendmail\n' "$1"; }

# sm_fetch CACHE - download and unpack once
sm_fetch() {
	local cache=$1 deb
	[[ -x $(sm_bin "$cache") ]] && return 0
	command -v apt-get >/dev/null || die "apt-get is needed to fetch Sendmail"
	rm -rf "$cache/debs" "$cache/root.new"
	mkdir -p "$cache/debs" "$cache/root.new"
	# -o APT::Sandbox::User=root: the cache dir is root's; download only
	(cd "$cache/debs" && timeout 300 apt-get download -q \
	    -o APT::Sandbox::User=root "${SM_PACKAGES[@]}" </dev/null) ||
	    die "apt-get download ${SM_PACKAGES[*]} failed (Debian mirror reachable?)"
	for deb in "$cache"/debs/*.deb; do
		dpkg-deb -x "$deb" "$cache/root.new" || die "dpkg-deb -x $deb failed"
	done
	# sendmail is set-gid smmsp in the package: drop that, or the loader
	# ignores LD_LIBRARY_PATH (secure mode); the tests run it as root
	find "$cache/root.new" -type f -perm /6000 -exec chmod ug-s {} +
	rm -rf "$cache/root"
	mv "$cache/root.new" "$cache/root"
	[[ -x $(sm_bin "$cache") ]] || die "no sendmail binary in the packages"
}

# sm_mkcf CACHE DIR SMTP_PORT SINK_PORT MILTER_SPEC - sendmail.mc, .cf
sm_mkcf() {
	local cache=$1 dir=$2 port=$3 sink=$4 milter=$5
	local cf=$cache/root/usr/share/sendmail/cf
	[[ -f $cf/m4/cf.m4 ]] || die "no sendmail-cf macros in $cache (fetch first)"
	mkdir -p "$dir/queue" "$dir/mqueue-client"
	chmod 700 "$dir/queue"
	: >"$dir/statistics"
	: >"$dir/aliases"
	# mta.test.example is not 127.0.0.1, so [127.0.0.1] (the smart host,
	# where the sink listens) is not one of our names (class w)
	printf '127.0.0.1\tlocalhost\n127.0.0.3\tmta.test.example mta\n' >"$dir/hosts"
	printf 'hosts\tfiles\naliases\tfiles\n' >"$dir/service.switch"
	cat >"$dir/sendmail.mc" <<-EOF
		divert(-1)
		# written by tests/integration/sendmail.sh; see docs/sendmail.mc
		divert(0)dnl
		include(\`$cf/m4/cf.m4')dnl
		VERSIONID(\`tollgate integration test')dnl
		OSTYPE(\`linux')dnl
		dnl private paths: nothing under /etc/mail or /var is used
		define(\`QUEUE_DIR', \`$dir/queue')dnl
		define(\`MSP_QUEUE_DIR', \`$dir/mqueue-client')dnl
		define(\`STATUS_FILE', \`$dir/statistics')dnl
		define(\`ALIAS_FILE', \`$dir/aliases')dnl
		define(\`confPID_FILE', \`$dir/sendmail.pid')dnl
		define(\`confHELP_FILE', \`')dnl
		define(\`confCW_FILE', \`-o $dir/local-host-names')dnl
		define(\`confSERVICE_SWITCH_FILE', \`$dir/service.switch')dnl
		define(\`confHOSTS_FILE', \`$dir/hosts')dnl
		define(\`confDEAD_LETTER_DROP', \`$dir/dead.letter')dnl
		define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe')dnl
		define(\`confDOMAIN_NAME', \`mta.test.example')dnl
		define(\`confDONT_PROBE_INTERFACES', \`True')dnl
		define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
		define(\`confPRIVACY_FLAGS', \`goaway')dnl
		define(\`confTO_IDENT', \`0s')dnl
		define(\`confDELIVERY_MODE', \`background')dnl
		define(\`confMIN_QUEUE_AGE', \`0s')dnl
		define(\`confTO_QUEUERETURN', \`1h')dnl
		define(\`LOCAL_MAILER_PATH', \`/bin/false')dnl
		dnl loopback only: accept and relay everything to the sink
		FEATURE(\`promiscuous_relay')dnl
		FEATURE(\`no_default_msa')dnl
		FEATURE(\`accept_unresolvable_domains')dnl
		FEATURE(\`accept_unqualified_senders')dnl
		FEATURE(\`nocanonify')dnl
		define(\`SMART_HOST', \`[127.0.0.1]')dnl
		define(\`RELAY_MAILER_ARGS', \`TCP \$h $sink')dnl
		define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sink')dnl
		define(\`SMTP_MAILER_ARGS', \`TCP \$h $sink')dnl
		DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA, Family=inet')dnl
		dnl tollgate-milter, as in docs/sendmail.mc
		INPUT_MAIL_FILTER(\`tollgate', \`S=$milter, F=T, T=C:10s;S:30s;R:30s;E:2m')dnl
		define(\`confMILTER_MACROS_CONNECT', \`j, _, {daemon_name}, {if_name}, {if_addr}, {client_addr}, {client_name}')dnl
		define(\`confMILTER_MACROS_ENVFROM', \`i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}')dnl
		define(\`confMILTER_LOG_LEVEL', \`9')dnl
		MAILER(\`local')dnl
		MAILER(\`smtp')dnl
	EOF
	: >"$dir/local-host-names"
	m4 "$dir/sendmail.mc" >"$dir/sendmail.cf" 2>"$dir/m4.log" ||
	    die "m4 $dir/sendmail.mc failed: $(cat "$dir/m4.log")"
}

case ${1:-} in
fetch)
	(($# == 2)) || die "usage: sendmail.sh fetch CACHE"
	sm_fetch "$2"
	;;
mkcf)
	(($# == 6)) || die "usage: sendmail.sh mkcf CACHE DIR SMTP_PORT SINK_PORT MILTER_SPEC"
	sm_mkcf "$2" "$3" "$4" "$5" "$6"
	;;
bin)
	(($# == 2)) || die "usage: sendmail.sh bin CACHE"
	sm_bin "$2"
	;;
*)
	die "usage: sendmail.sh fetch|mkcf|bin ..."
	;;
esac
