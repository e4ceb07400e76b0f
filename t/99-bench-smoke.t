# script/bench --smoke: the benchmark runs end to end -- MariaDB with TCP,
# kvapi as deployed, the Express peer (when its directory and node are
# there), etcd with auth, both ceilings, every wrk scenario, the isolation
# and timing checks, a short overload run (1,000 connections, 2 s) on
# kvapi and etcd, the report and its CSV -- in seconds and without judging
# any number, so that the tool cannot rot between real runs.  It only
# checks that every scenario was measured and answered as it should (a
# benchmark of error pages measures nothing).  Never skipped: without wrk
# or etcd, which script/bench installs, it fails.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Test::More;

my $src = $ENV{KVAPI_SRCDIR} // abs_path(dirname(__FILE__) . '/..');
my $build = $ENV{KVAPI_BUILDDIR} // $src;
my $out = tempdir('kvb-smoke-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $log = "$out/bench.log";

local $ENV{KVAPI_BIN} = $ENV{KVAPI_BIN} // "$build/src/kvapi";
# Under make check the tree is built: no second make from inside it.
my $t0 = time;
system("'$src/script/bench' --smoke --no-build --out '$out' </dev/null >'$log' 2>&1");
my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;

sub log_tail {
    open my $fh, '<', $log or return '';
    my @l = <$fh>;
    return join '', @l[($#l > 40 ? $#l - 40 : 0) .. $#l];
}

is($rc, 0, 'script/bench --smoke exits 0') or diag log_tail();
note sprintf 'script/bench --smoke took %d s', time - $t0;

my ($csv) = glob "$out/*-smoke-runs.csv";
# A failed run fails this file, not the whole suite.
ok($csv, 'per-run CSV written') or do { diag('no CSV: ' . log_tail()); done_testing; exit 1 };
open my $fh, '<', $csv or die "$csv: $!";
chomp(my $head = <$fh>);
my @cols = split /,/, $head;
my %run;
while (<$fh>) {
    chomp;
    my %r;
    @r{@cols} = split /,/;
    $run{"$r{target} $r{scenario}"} = \%r;
}
close $fh;

my @want = map {"kvapi $_"} qw(get_hit get_miss put post delete token mix
    get_hit_idle get_hit_storm);
push @want, 'ceil_select get_hit', 'ceil_return get_hit';
push @want, map {"etcd $_"} qw(get_hit put delete token);
# The Express peer (../shared/peers/express-ref, its packages from npm)
# is part of the smoke run like the others: absent, it fails here.
push @want, 'express get_hit';
for my $id (@want) {
    my $r = $run{$id};
    ok($r && $r->{requests} > 0, "$id: measured") or next;
    is($r->{socket_errors}, 0, "$id: no socket errors or timeouts");
    # A miss is a 404 by design; everything else must be 2xx.
    is($r->{non2xx}, $id =~ /miss/ ? $r->{requests} : 0,
        "$id: " . ($id =~ /miss/ ? 'every answer 404' : 'every answer 2xx'));
}

# Overload: measured and its statuses counted; no judgement of errors,
# which is what the run is there to show.
for my $t (qw(kvapi etcd)) {
    for my $s (qw(get getput)) {
        my $id = "$t overload_${s}_c1000";
        my $r = $run{$id};
        ok($r && $r->{requests} > 0, "$id: measured") or next;
        is($r->{connections}, 1000, "$id: 1000 connections");
        like($r->{$_} // '', qr/^\d+$/, "$id: $_ counted")
            for qw(status_503 status_429 err_connect err_read err_write err_timeout);
    }
}

my ($report) = glob "$out/*-smoke-report.txt";
ok($report, 'report written');
open $fh, '<', $report or die "$report: $!";
my $text = do { local $/; <$fh> };
close $fh;
like($text, qr/^check\s+value\s+target\s+result$/m, 'report has the checks');
like($text, qr/^token timing unknown\/wrong \(kvapi\)\s+\d/m,
    'timing check measured');
like($text, qr/^worker RSS after, MB \(max of every pool\)\s+\d/m,
    'worker memory measured');
like($text, qr/^$_\s+\d/m, "check measured: $_")
    for 'get_hit kvapi/etcd', 'put kvapi/etcd', 'post kvapi/etcd put', 'delete kvapi/etcd';
like($text, qr/^overload: /m, 'report has the overload table');
like($text, qr/^  kvapi\s+overload_get_c1000\s+\d+ lines, \d+ "worker_connections are not enough"$/m,
    "nginx's error log read during the overload run");
like($text, qr/^overload get at 1000: kvapi connection errors\s+\d/m, 'overload check measured');
my ($checks) = $text =~ /^check\s+value\s+target\s+result\n(.*?)\n\n/ms;
my @judged = grep { !/(?:not judged \(smoke\)|info)$/ } split /\n/, $checks // '';
ok($checks && !@judged, 'no threshold judged in smoke mode') or diag @judged;
ok(-s (glob "$out/*-smoke-summary.csv")[0], 'summary CSV written');
ok(-s (glob "$out/*-smoke-checks.csv")[0], 'checks CSV written');

done_testing;
