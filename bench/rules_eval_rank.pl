#!/usr/bin/perl
# rules_eval_rank.pl - rank SpamAssassin eval: functions by the points
# their rules carry (sum of |score| over the rules calling them, last
# score set: Bayes on, net on), to choose which to implement natively.
# usage: perl bench/rules_eval_rank.pl [/usr/share/spamassassin/*.cf]
use strict;
use warnings;

my @files = @ARGV ? @ARGV : glob("/usr/share/spamassassin/*.cf");
my (%fn_of, %score);
for my $f (@files) {
	open(my $fh, '<', $f) or die "$f: $!";
	while (<$fh>) {
		s/^\s+//;
		next if /^#/;
		if (/^(?:header|body|rawbody|uri|full|mimeheader)\s+(\S+)\s+eval:(\w+)/) {
			$fn_of{$1} = $2;
		} elsif (/^score\s+(\S+)\s+(.*)/) {
			my @v = split(' ', $2);
			$score{$1} = $v[$#v > 3 ? 3 : $#v];
		}
	}
}
my (%sum, %n);
for my $r (keys %fn_of) {
	my $fn = $fn_of{$r};
	$n{$fn}++;
	my $s = $score{$r};
	$s = ($r =~ /^__/ ? 0 : 1) unless defined $s && $s =~ /^-?[\d.]+$/;
	$sum{$fn} += abs($s);
}
printf("%8s %5s  %s\n", "points", "rules", "eval function");
for my $fn (sort { $sum{$b} <=> $sum{$a} || $a cmp $b } keys %sum) {
	printf("%8.3f %5d  %s\n", $sum{$fn}, $n{$fn}, $fn);
}
