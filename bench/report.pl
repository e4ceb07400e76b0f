#!/usr/bin/env perl
# The report of script/bench: medians over the rounds of every target and
# scenario, the ratios the performance issue sets targets for, and the
# CSV files beside the per-run CSV.
#
#   report.pl RUNS_CSV FACTS OUTDIR STAMP MODE
#
# FACTS holds key=value lines that script/bench recorded (machine, bcrypt
# timing, memory, timing check, storm rates).  Prints the report on
# stdout and writes OUTDIR/STAMP-MODE-{summary,checks}.csv and
# STAMP-MODE-report.txt; outside --smoke also latest-MODE-* copies.
use strict;
use warnings;

my ($runs_csv, $facts_file, $outdir, $stamp, $mode) = @ARGV;
die "usage: report.pl RUNS_CSV FACTS OUTDIR STAMP MODE\n" unless $mode;

my %f;
open my $fh, '<', $facts_file or die "$facts_file: $!";
while (<$fh>) {
    chomp;
    my ($k, $v) = split /=/, $_, 2;
    $f{$k} = $v if defined $v;
}
close $fh;

# round >= 1 only: round 0 is warm-up.
my (%runs, @order, %seen);
open $fh, '<', $runs_csv or die "$runs_csv: $!";
my @cols = split /,/, scalar <$fh> =~ s/\s+$//r;
while (<$fh>) {
    chomp;
    my %r;
    @r{@cols} = split /,/;
    next if $r{round} < 1;
    my $id = "$r{target}\t$r{scenario}";
    push @order, $id unless $seen{$id}++;
    push @{ $runs{$id} }, \%r;
}
close $fh;

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

my %med;
for my $id (@order) {
    my $rs = $runs{$id};
    my %m = (n => scalar @$rs, connections => $rs->[0]{connections});
    for my $c (qw(rps p50_ms p90_ms p99_ms max_ms cpu_app_us cpu_nginx_us cpu_db_us)) {
        $m{$c} = median(map { $_->{$c} } @$rs);
    }
    $m{requests} += $_->{requests} for @$rs;
    $m{non2xx} += $_->{non2xx} for @$rs;
    $m{socket_errors} += $_->{socket_errors} for @$rs;
    for my $c (qw(err_connect err_read err_write err_timeout)) {
        $m{$c} += $_->{$c} // 0 for @$rs;
    }
    # Counted in the overload runs only: empty elsewhere.
    for my $c (qw(status_503 status_429)) {
        for (grep { defined $_->{$c} && $_->{$c} ne '' } @$rs) { $m{$c} += $_->{$c} }
    }
    $med{$id} = \%m;
}
sub medv { my ($t, $s, $c) = @_; my $m = $med{"$t\t$s"}; return $m ? $m->{$c} : undef }

my @lines;
sub out { push @lines, sprintf(shift, @_) }

out("kvapi benchmark, %s run %s", $mode, $f{stamp} // $stamp);
out("machine: %s cores (%s), %s MB RAM, Linux %s", $f{nproc}, $f{cpu} // '?',
    $f{mem_mb} // '?', $f{kernel} // '?');
out("other jobs: CPU %s%% busy before the run (load %s), %s%% after (load %s)",
    $f{busy_before} // '?', $f{load_before} // '?', $f{busy_after} // '?',
    $f{load_after} // '?');
out("wrk %s, %s s a run (POST /api/token: 1 thread, %s connections, %s s), %s round(s), median shown",
    $f{wrk} // '?', $f{duration} // '?', ($f{nproc} // 1) * 4,
    ($f{duration} // 0) * ($mode eq 'smoke' ? 1 : 2), $f{rounds} // '?');
out("bcrypt cost %s: one crypt_rn %.1f ms wall (%.1f ms CPU), at nice 10 %.1f ms wall, median of %s",
    $f{cost}, $f{bcrypt_wall_ms} // 0, $f{bcrypt_cpu_ms} // 0,
    $f{bcrypt_nice10_wall_ms} // 0, $f{bcrypt_runs} // '?')
    if $f{bcrypt_wall_ms};
out("kvapi_b: %s", $f{compare_bin}) if $f{compare_bin};
out("etcd %s: %s", $f{etcd_version}, $f{etcd_args}) if $f{etcd_version};
out("data: %s users x %s keys", $f{users} // '?', $f{keys} // '?') if $mode ne 'growth';
my ($pool) = ($f{mariadb_args} // '') =~ /.*--innodb-buffer-pool-size=(\S+)/;
out("MariaDB: %s, InnoDB buffer pool %s", $f{mariadb_version} // 'mariadbd', $pool // 'default');
out("data: 1000 users x 10, 100, 1000 keys in three databases (kvapi_N: N keys), seeded in %s, %s, %s s; MariaDB data directory %s MB",
    map({ $f{"growth_seed_s_$_"} // '?' } 10000, 100000, 1000000), $f{growth_db_mb} // '?')
    if $mode eq 'growth';
out('');
out("%-12s %-16s %8s %8s %8s %9s %9s %7s  %s", 'target', 'scenario', 'req/s',
    'p50 ms', 'p90 ms', 'p99 ms', 'requests', 'non-2xx', 'CPU us/req: app nginx  db');
for my $id (grep { !/\toverload_/ } @order) {
    my ($t, $s) = split /\t/, $id;
    my $m = $med{$id};
    out("%-12s %-16s %8.0f %8.2f %8.2f %9.2f %9d %7d  %15s %5s %4s%s", $t, $s, $m->{rps},
        $m->{p50_ms}, $m->{p90_ms}, $m->{p99_ms}, $m->{requests}, $m->{non2xx},
        map({ defined $_ ? sprintf('%.0f', $_) : '-' } @$m{qw(cpu_app_us cpu_nginx_us cpu_db_us)}),
        $m->{socket_errors} ? "  ($m->{socket_errors} socket errors)" : '');
}

# The overload runs: one each (round 1), many connections.
my @ovl = grep { /\toverload_/ } @order;
if (@ovl) {
    out('');
    out("overload: %s; wrk -t%s, keep-alive, --timeout 10 s; one run each", $f{overload} // '?',
        ($f{wrk} // '') =~ /-t(\d+)/ ? $1 : '?');
    out("open files %s, net.core.somaxconn %s, tcp_max_syn_backlog %s",
        $f{nofile} // '?', $f{somaxconn} // '?', $f{syn_backlog} // '?');
    out("%-8s %-20s %8s %8s %7s %6s %6s %7s %6s %6s %7s %8s %8s %8s", 'target', 'scenario', 'req/s',
        'requests', 'non-2xx', '503 %', '429 %', 'connect', 'read', 'write', 'timeout', 'p50 ms', 'p99 ms', 'max ms');
    for my $id (@ovl) {
        my ($t, $s) = split /\t/, $id;
        my $m = $med{$id};
        my $pc = sub { defined $_[0] && $m->{requests} ? sprintf('%.1f', 100 * $_[0] / $m->{requests}) : '-' };
        out("%-8s %-20s %8.0f %8d %7d %6s %6s %7d %6d %6d %7d %8.1f %8.1f %8.1f", $t, $s, $m->{rps},
            $m->{requests}, $m->{non2xx}, $pc->($m->{status_503}), $pc->($m->{status_429}),
            @$m{qw(err_connect err_read err_write err_timeout p50_ms p99_ms max_ms)});
    }
    out("skipped: %s connections (%s)", $_ =~ s/^ovl_skipped_//r, $f{$_})
        for sort grep { /^ovl_skipped_/ } keys %f;
    out('');
    out('logged during each run (nginx error log; etcd log), lines by message; kernel: what the');
    out("network namespace's TCP counters (/proc/net/netstat) grew by, other jobs' traffic included:");
    for my $id (@ovl) {
        my ($t, $s) = split /\t/, $id;
        my $k = "ovl_log_${t}_$s";
        next unless defined $f{"${k}_count"};
        my ($total, $wc) = $f{"${k}_count"} =~ /total=(\d+) worker_connections=(\d+)/;
        out("  %-8s %-20s %d lines%s", $t, $s, $total // 0,
            $t eq 'etcd' ? '' : sprintf(', %d "worker_connections are not enough"', $wc // 0));
        out("      %s", $_) for grep { length } split /\|/, $f{"${k}_top"} // '';
        out("      kernel: %s", $f{"ovl_tcp_${t}_$s"}) if $f{"ovl_tcp_${t}_$s"};
    }
}

# Checks: [name, value, op, target, unit].
my @checks;
sub ratio {
    my ($a, $b) = @_;
    return (defined $a && defined $b && $b > 0) ? $a / $b : undef;
}
sub check { push @checks, [@_] }

# Per round, the ratio of target $x to target $y in scenario $s (they ran
# one after the other; $y in scenario $sy if given), to show the spread
# behind a ratio of medians.
sub per_round {
    my ($x, $s, $y, $sy) = @_;
    my %y = map { $_->{round} => $_->{rps} } @{ $runs{"$y\t" . ($sy // $s)} // [] };
    my @r = map { $y{ $_->{round} } ? sprintf('%.2f', $_->{rps} / $y{ $_->{round} }) : () }
        sort { $a->{round} <=> $b->{round} } @{ $runs{"$x\t$s"} // [] };
    return @r > 1 ? 'rounds ' . join(' ', @r) : '';
}
sub cpu { my $m = $med{"$_[0]\t$_[1]"}; return $m && defined $m->{cpu_app_us} ? $m->{cpu_app_us} + $m->{cpu_nginx_us} + $m->{cpu_db_us} : undef }

if ($mode eq 'growth') {
    my $base = medv('kvapi_10000', 'get_hit', 'rps');
    for my $n (100000, 1000000) {
        check("GET hit at $n keys / at 10000", ratio(medv("kvapi_$n", 'get_hit', 'rps'), $base), '>=', 0.9);
    }
} else {
    for my $s (qw(get_hit get_miss)) {
        check("$s kvapi/express", ratio(medv('kvapi', $s, 'rps'), medv('express', $s, 'rps')), '>=', 2.5,
            0, per_round('kvapi', $s, 'express'));
    }
    # GET hit: 0.85 since the etcd issue (was 0.6, as GET miss still is).
    for my $s (qw(get_hit get_miss)) {
        check("$s kvapi/one-SELECT ceiling", ratio(medv('kvapi', $s, 'rps'), medv('ceil_select', $s, 'rps')),
            '>=', $s eq 'get_hit' ? 0.85 : 0.6, 0, per_round('kvapi', $s, 'ceil_select'));
    }
    # etcd (one node, auth, JSON gateway): etcd has no "create", so POST
    # of a new key is held against etcd's put.
    check('get_hit kvapi/etcd', ratio(medv('kvapi', 'get_hit', 'rps'), medv('etcd', 'get_hit', 'rps')), '>=', 2,
        0, per_round('kvapi', 'get_hit', 'etcd'));
    for my $s (qw(put post delete)) {
        my $es = $s eq 'post' ? 'put' : $s;
        check($s eq 'post' ? 'post kvapi/etcd put' : "$s kvapi/etcd",
            ratio(medv('kvapi', $s, 'rps'), medv('etcd', $es, 'rps')), '>=', 1.5,
            0, per_round('kvapi', $s, 'etcd', $es));
    }
    for my $s (qw(put post delete)) {
        check("$s kvapi/express", ratio(medv('kvapi', $s, 'rps'), medv('express', $s, 'rps')), '>=', 2,
            0, per_round('kvapi', $s, 'express'));
    }
    # The ceiling: nproc / the time of one crypt_rn, timed once before
    # the rounds (at nice 0, as the issue defines it, and at the auth
    # pool's nice 10), and measured in every round beside the logins
    # (ceil_bcrypt: nproc processes hashing at nice 10 for as long as a
    # token run), which the check uses: on a machine other jobs keep
    # busy, the one-off timing does not see what the logins got.
    my $c10 = $f{bcrypt_nice10_wall_ms} ? $f{nproc} * 1000 / $f{bcrypt_nice10_wall_ms} : undef;
    my $c0 = $f{bcrypt_wall_ms} ? $f{nproc} * 1000 / $f{bcrypt_wall_ms} : undef;
    my $cr = medv('ceil_bcrypt', 'token', 'rps');
    check(sprintf('token kvapi/bcrypt ceiling, rounds (%.1f/s)', $cr // 0),
        ratio(medv('kvapi', 'token', 'rps'), $cr), '>=', 0.9, 0, per_round('kvapi', 'token', 'ceil_bcrypt'));
    check(sprintf('token kvapi/(nproc/crypt_rn) nice 0 (%.1f/s)', $c0 // 0),
        ratio(medv('kvapi', 'token', 'rps'), $c0), '>=', 0.9, 1);
    check(sprintf('token kvapi/(nproc/crypt_rn) nice 10 (%.1f/s)', $c10 // 0),
        ratio(medv('kvapi', 'token', 'rps'), $c10), '>=', 0.9, 1);
    for my $t (qw(kvapi express)) {
        my @r;
        for my $rs (@{ $runs{"$t\tget_hit_storm"} // [] }) {
            my ($idle) = grep { $_->{round} == $rs->{round} } @{ $runs{"$t\tget_hit_idle"} // [] };
            push @r, ratio($rs->{p99_ms}, $idle && $idle->{p99_ms});
        }
        check("$t GET-hit p99 storm/idle", median(@r), '<=', 2, $t ne 'kvapi');
    }
    # The largest figure of any of kvapi's pools.
    my $pools_max = sub { (sort { $b <=> $a } grep { defined } map { $f{"mem_${_}_$_[0]_kb"} } qw(data write auth))[0] };
    my $rss = $pools_max->('rss');
    my $hwm = $pools_max->('hwm');
    check('worker RSS after, MB (max of every pool)', defined $rss ? $rss / 1024 : undef, '<=', 8);
    check('worker peak RSS (VmHWM), MB', defined $hwm ? $hwm / 1024 : undef, '<=', 8, 1);
    my $anon = $pools_max->('anon');
    check('worker private memory (RssAnon), MB', defined $anon ? $anon / 1024 : undef, 'info');
    check('token timing unknown/wrong (kvapi)', $f{timing_kvapi_ratio}, 'in', [0.9, 1.1]);
    check('token timing, median of pair ratios (kvapi)', $f{timing_kvapi_pair_ratio}, 'in', [0.9, 1.1], 1)
        if defined $f{timing_kvapi_pair_ratio};
    check('token timing unknown/wrong (express)', $f{timing_express_ratio}, 'in', [0.9, 1.1], 1)
        if defined $f{timing_express_ratio};
    check("$_ kvapi/express", ratio(medv('kvapi', $_, 'rps'), medv('express', $_, 'rps')), 'info')
        for qw(mix token);
    check('token kvapi/etcd', ratio(medv('kvapi', 'token', 'rps'), medv('etcd', 'token', 'rps')), 'info');
    # CPU per request, all parts summed (app + nginx + MariaDB): how much
    # less work kvapi does, a figure the other jobs disturb far less.
    check("$_ CPU/request express/kvapi", ratio(cpu('express', $_), cpu('kvapi', $_)), 'info')
        for qw(get_hit get_miss put post delete mix);
    check("get_hit CPU/request kvapi/ceiling", ratio(cpu('kvapi', 'get_hit'), cpu('ceil_select', 'get_hit')), 'info');
    check("$_ CPU/request etcd/kvapi", ratio(cpu('etcd', $_), cpu('kvapi', $_)), 'info')
        for qw(get_hit put delete);
    if ($f{compare_bin}) {
        check("$_ kvapi_b/kvapi", ratio(medv('kvapi_b', $_, 'rps'), medv('kvapi', $_, 'rps')), 'info')
            for qw(get_hit get_miss put patch post delete token mix);
    }
    # A merge patch is a locked read and a write in one transaction.
    check('patch/put kvapi', ratio(medv('kvapi', 'patch', 'rps'), medv('kvapi', 'put', 'rps')), 'info');
    # A batch of ten puts: keys written a second, against single PUTs.
    check(sprintf('batch keys/s (%.0f) / put keys/s kvapi', 10 * (medv('kvapi', 'batch', 'rps') // 0)),
        ratio(10 * (medv('kvapi', 'batch', 'rps') // 0) || undef, medv('kvapi', 'put', 'rps')), 'info');
    check('get_hit kvapi/nginx return 200', ratio(medv('kvapi', 'get_hit', 'rps'), medv('ceil_return', 'get_hit', 'rps')), 'info');

    # Overload (the etcd issue): no connection error of any kind on
    # kvapi (etcd's are context); at 1,000 connections kvapi's p99 at
    # most etcd's; the share of 503s as information.
    for my $id (grep { /^kvapi\t/ } @ovl) {
        my $s = (split /\t/, $id)[1];
        my $m = $med{$id};
        (my $name = $s) =~ s/^overload_(\w+)_c(\d+)$/overload $1 at $2:/;
        check("$name kvapi connection errors", $m->{socket_errors}, '<=', 0);
        check("$name etcd connection errors", medv('etcd', $s, 'socket_errors'), '<=', 0, 1)
            if $med{"etcd\t$s"};
        check("$name p99 kvapi/etcd", ratio($m->{p99_ms}, medv('etcd', $s, 'p99_ms')), '<=', 1,
            $m->{connections} != 1000) if $med{"etcd\t$s"};
        check("$name kvapi 503 share, %", $m->{requests} && defined $m->{status_503}
            ? 100 * $m->{status_503} / $m->{requests} : undef, 'info');
    }
}

out('');
out("%-50s %9s  %-10s %s", 'check', 'value', 'target', 'result');
my @csv = ("check,value,op,target,result");
for my $c (@checks) {
    my ($name, $v, $op, $target, $info, $note) = @$c;
    my ($tt, $res);
    if ($op eq 'info') {
        ($tt, $res) = ('', 'info');
    } elsif (!defined $v) {
        $tt = ref $target ? "$target->[0]-$target->[1]" : "$op $target";
        $res = 'n/a';
    } elsif ($op eq 'in') {
        $tt = "$target->[0]-$target->[1]";
        my $ok = $v >= $target->[0] && $v <= $target->[1];
        $res = $ok ? 'ok' : 'MISSED';
    } else {
        $tt = "$op $target";
        my $ok = $op eq '>=' ? $v >= $target : $v <= $target;
        if ($ok) {
            $res = 'ok';
        } elsif ($target == 0) {
            # A count that must be 0: missed by the count.
            $res = sprintf('MISSED by %s', $v);
        } else {
            my $by = $op eq '>=' ? ($target - $v) / $target : ($v - $target) / $target;
            $res = sprintf($by < 0.01 ? 'MISSED by %.1f%%' : 'MISSED by %.0f%%', 100 * $by);
        }
    }
    $res .= ' (context)' if $info && $res ne 'info';
    $res = 'not judged (smoke)' if $mode eq 'smoke' && $res ne 'info';
    $res .= "  ($note)" if $note;
    out("%-50s %9s  %-10s %s", $name, defined $v ? sprintf('%.2f', $v) : '-', $tt, $res);
    push @csv, join(',', map { my $x = $_ // ''; $x =~ s/,/;/g; $x }
        $name, defined $v ? sprintf('%.4f', $v) : '', $op, $tt, $res);
}
out('');
out("run time: %s s", $f{seconds} // '?');

my $text = join("\n", @lines) . "\n";
print $text;

my $base = "$outdir/$stamp-$mode";
my %files = ("$base-report.txt" => $text, "$base-checks.csv" => join("\n", @csv) . "\n");
my @sumcols = qw(rps p50_ms p90_ms p99_ms max_ms requests non2xx socket_errors cpu_app_us
    cpu_nginx_us cpu_db_us connections err_connect err_read err_write err_timeout status_503 status_429);
my @sum = (join ',', qw(target scenario rounds), @sumcols);
for my $id (@order) {
    my ($t, $s) = split /\t/, $id;
    my $m = $med{$id};
    push @sum, join(',', $t, $s, $m->{n}, map { $m->{$_} // '' } @sumcols);
}
$files{"$base-summary.csv"} = join("\n", @sum) . "\n";
if ($mode ne 'smoke') {
    for my $k (keys %files) {
        (my $latest = $k) =~ s{/\Q$stamp\E-}{/latest-};
        $files{$latest} = $files{$k};
    }
}
for my $path (sort keys %files) {
    open my $o, '>', $path or die "$path: $!";
    print $o $files{$path};
    close $o or die "$path: $!";
}
