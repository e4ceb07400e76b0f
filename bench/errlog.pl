#!/usr/bin/env perl
# What a log said during one run of script/bench: the lines of FILE from
# byte OFFSET on, each reduced to its level and message (no time, pid,
# connection number, client address, request or socket path), counted.
# Reads nginx's error log and etcd's JSON (zap) log.
#
#   errlog.pl FILE OFFSET
#
# Prints "total=N worker_connections=N" (lines in all, and nginx's
# "worker_connections are not enough"), then "COUNT LEVEL MESSAGE" lines,
# most frequent first.
use strict;
use warnings;
use JSON::PP qw(decode_json);

my ($file, $offset) = @ARGV;
die "usage: errlog.pl FILE OFFSET\n" unless defined $offset;
my %n;
my ($total, $wc) = (0, 0);
if (open my $fh, '<', $file) {
    seek $fh, $offset, 0;
    while (my $l = <$fh>) {
        chomp $l;
        next if $l eq '';
        $total++;
        $wc++ if $l =~ /worker_connections are not enough/;
        my $m;
        if ($l =~ /^\{/) {
            my $j = eval { decode_json($l) } // {};
            $m = join ' ', $j->{level} // '?', $j->{msg} // $l;
        } elsif ($l =~ /^\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$/) {
            ($m = "$1 $2") =~ s/, (?:client|server|request|upstream|host): .*$//;
        } else {
            $m = $l;
        }
        $m =~ s{unix:/\S+?(?=[" ])}{unix:SOCKET}g;
        $m =~ s{"/\S+"}{"PATH"}g;
        $m =~ s{\[\d+\]}{[N]}g;
        $m =~ s{\b\d+\.\d+\.\d+\.\d+(?::\d+)?\b}{ADDR}g;
        $n{$m}++;
    }
}
print "total=$total worker_connections=$wc\n";
printf "%d %s\n", $n{$_}, $_ for sort { $n{$b} <=> $n{$a} || $a cmp $b } keys %n;
