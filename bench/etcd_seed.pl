#!/usr/bin/env perl
# Seed etcd for script/bench through its JSON gateway: read "KEY VALUE"
# lines (VALUE: the rest of the line) on stdin and put them, 128 to a
# transaction (etcd's default --max-txn-ops), from 4 processes with a
# kept-alive connection each; with --delete-prefix P, first delete every
# key under P.  Putting keys one by one would cost a WAL fsync each, and
# one transaction at a time leaves etcd waiting: 40,000 keys took 20 s
# that way, 6.5 s from 4 processes, on 2 cores.
#
#   etcd_seed.pl URL TOKEN [--delete-prefix P] <LINES
#
# Prints the number of keys put.  Dies on any answer but 200.
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);
use MIME::Base64 qw(encode_base64);

my ($url, $token, @opt) = @ARGV;
die "usage: etcd_seed.pl URL TOKEN [--delete-prefix P] <LINES\n" unless $token;
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);

sub b64 { encode_base64($_[0], '') }

sub call {
    my ($op, $body) = @_;
    my $r = $http->post("$url/v3/$op", {
        headers => { Authorization => $token, 'Content-Type' => 'application/json' },
        content => encode_json($body) });
    die "etcd_seed: $op: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    return decode_json($r->{content});
}

# The end of a prefix range: the prefix with its last byte plus one.
sub prefix_end {
    my $p = shift;
    return substr($p, 0, -1) . chr(ord(substr($p, -1)) + 1);
}

if (@opt == 2 && $opt[0] eq '--delete-prefix') {
    call('kv/deleterange', { key => b64($opt[1]), range_end => b64(prefix_end($opt[1])) });
} elsif (@opt) {
    die "etcd_seed: unknown option @opt\n";
}

my @batches = ([]);
while (my $line = <STDIN>) {
    chomp $line;
    my ($k, $v) = split / /, $line, 2;
    next unless defined $v;
    push @batches, [] if @{ $batches[-1] } == 128;
    push @{ $batches[-1] }, { requestPut => { key => b64($k), value => b64($v) } };
}
my ($procs, @kids) = (4);
for my $p (0 .. $procs - 1) {
    my $pid = fork // die "etcd_seed: fork: $!\n";
    if (!$pid) {
        $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);
        for (my $i = $p; $i < @batches; $i += $procs) {
            call('kv/txn', { success => $batches[$i] }) if @{ $batches[$i] };
        }
        exit 0;
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid $_, 0; $failed ||= $?; }
die "etcd_seed: a seeding process failed\n" if $failed;
my $n = 0;
$n += @$_ for @batches;
print "$n\n";
