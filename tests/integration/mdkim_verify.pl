#!/usr/bin/perl
# mdkim_verify.pl - verify a message's DKIM signatures with Mail::DKIM,
# asking a local DNS server (tgmail.py dns-serve) instead of the system's.
#
#   mdkim_verify.pl --dns 127.0.0.1:PORT [--min-pass N] FILE
#
# Prints one line per signature: "mail-dkim: a=... d=... s=...: RESULT".
# Exits 0 when at least --min-pass signatures pass (default: all of them)
# and none fails.  Signatures whose algorithm this Mail::DKIM does not
# implement (Debian 12: ed25519-sha256) give "invalid (unsupported ...)"
# and are reported, not counted as failures.
use strict;
use warnings;
use Getopt::Long;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ($dns, $min_pass);
GetOptions('dns=s' => \$dns, 'min-pass=i' => \$min_pass)
    and $dns and @ARGV == 1
    or die "usage: $0 --dns ADDR:PORT [--min-pass N] FILE\n";
my ($addr, $port) = split /:/, $dns;

# Mail::DKIM::DNS::resolver() is the documented hook for the resolver.
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => [$addr], port => $port, recurse => 0,
    udp_timeout => 5, tcp_timeout => 5, retry => 1));

open my $fh, '<', $ARGV[0] or die "$ARGV[0]: $!\n";
binmode $fh;
my $v = Mail::DKIM::Verifier->new;
while (my $line = <$fh>) {
	$line =~ s/\r?\n\z/\r\n/;
	$v->PRINT($line);
}
$v->CLOSE;

my ($pass, $fail) = (0, 0);
for my $sig ($v->signatures) {
	my $r = $sig->result;
	my $d = $sig->result_detail;
	printf "mail-dkim: a=%s d=%s s=%s: %s\n", $sig->algorithm // '?',
	    $sig->domain // '?', $sig->selector // '?', $d;
	if ($r eq 'pass') { $pass++ }
	elsif ($d =~ /unsupported/) { }
	else { $fail++ }
}
$min_pass //= scalar $v->signatures;
exit(($fail == 0 && $pass >= $min_pass && $pass > 0) ? 0 : 1);
