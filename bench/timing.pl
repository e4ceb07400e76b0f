#!/usr/bin/env perl
# The timing check of POST /api/token: does a login for an unknown user
# take as long as one with a wrong password?  (If it were faster, the
# time would tell which usernames exist.)  One client, one request at a
# time over a kept-alive connection, the two kinds in ABBA order so that
# drift in the machine's load hits both alike; prints the median of each
# and their ratio on one line.
#
#   timing.pl BASE_URL USERNAME PAIRS
#
# USERNAME must exist; its password is not needed (every attempt here is
# wrong).  Unknown names are fresh valid usernames.
use strict;
use warnings;
use HTTP::Tiny;
use Time::HiRes qw(time);

my ($base, $user, $pairs) = @ARGV;
die "usage: timing.pl BASE_URL USERNAME PAIRS\n" unless $pairs;
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);
my (%ms, %status);

sub attempt {
    my ($kind, $i) = @_;
    my $name = $kind eq 'unknown' ? "nobody_${$}_$i" : $user;
    my $body = qq({"username":"$name","password":"wrong-password-$i"});
    my $t0 = time;
    my $res = $http->request(POST => "$base/api/token", {
        headers => {'Content-Type' => 'application/json'},
        content => $body});
    push @{ $ms{$kind} }, (time - $t0) * 1000;
    $status{"$kind:$res->{status}"}++;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

attempt('wrong', 0);    # warm-up: connection, caches
%ms = %status = ();
for my $i (1 .. $pairs) {
    my @order = $i % 2 ? qw(unknown wrong) : qw(wrong unknown);
    attempt($_, $i) for @order;
}
my ($u, $w) = (median(@{ $ms{unknown} }), median(@{ $ms{wrong} }));
# Also the median of each pair's own ratio: the two requests of a pair
# ran back to back, so a change in the machine's load cancels out.
my $pr = median(map { $ms{unknown}[$_] / $ms{wrong}[$_] } 0 .. $pairs - 1);
printf "TIMING pairs=%d unknown_ms=%.2f wrong_ms=%.2f ratio=%.3f pair_ratio=%.3f statuses=%s\n",
    $pairs, $u, $w, $u / $w, $pr, join(',', map {"$_=$status{$_}"} sort keys %status);
