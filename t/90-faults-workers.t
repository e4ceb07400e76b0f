# Workers killed under a write load.  Six clients own disjoint keys and
# create, replace, delete and read them without pause while one write
# worker, then one read worker, then every worker of the three pools, is
# killed with SIGKILL.
# multiwatch must respawn them; a request that a dying worker held may
# fail, as the JSON 503 SERVICE_UNAVAILABLE (nginx's 502), nothing else
# may; every write answered 2xx must be in the database afterwards with
# the value that was acknowledged last (t/lib/KVLoad.pm check_writes).
#
# multiwatch gives up on a worker slot that dies more than 3 times within
# 10 s of its last spawn, so no slot is killed more than twice here.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest qw(poll_until);
use KVLoad;

my $WORKERS = 4;
# Client 6's wrong logins keep the bcrypt pool busy: no lock-out here
# (t/22-lockout.t tests it).
my $s = KVTest->start(workers => $WORKERS, login_max_failures => 1000000);
# The deaths we cause: multiwatch says "died, respawn" for a worker older
# than 10 s, "Spawning child failed, next try" for a younger one.
$s->allow_log(qr/Child\[\d+\] died, respawn$/,
    qr/Spawning child\[\d+\] failed, next try$/);

my @tokens = map { $s->new_user('f90')->{token} } 1 .. 3;

# Wait until pool $pool has $n live workers, none of them in @$gone.
sub respawned {
    my ($pool, $n, $gone, $limit) = @_;
    my %gone = map { $_ => 1 } @$gone;
    my $t0 = time;
    while (time - $t0 < $limit) {
        my @p = $s->worker_pids($pool);
        return (time - $t0, @p) if @p == $n && !grep { $gone{$_} } @p;
        sleep 0.05;
    }
    return;
}

my @data0 = $s->worker_pids('kvapi');
my @write0 = $s->worker_pids('write');
my @auth0 = $s->worker_pids('auth');
is(scalar @data0, $WORKERS, "$WORKERS read workers");
is(scalar @write0, $WORKERS, "$WORKERS write workers");
ok(scalar @auth0 >= 1, scalar(@auth0) . ' auth workers');

my $writer = KVLoad::writer(tokens => \@tokens, prefix => 'f90', keys => 10);
my $load = KVLoad->start(port => $s->port, dir => $s->dir . '/load',
    clients => 7, deadline => 40,
    run => sub {
        my ($c, $i) = @_;
        return $writer->($c, $i) if $i < 6;
        # Client 6 logs in again and again: the auth pool is under load too.
        while ($c->running) {
            $c->request(POST => '/api/token', op => 'login',
                body => '{"username":"nobody_f90","password":"wrong password"}');
        }
    });
# Progress is read from nginx's access log, not guessed from time: data
# requests answered below 500.
my $answered = $s->access_counter(sub { $_[0]{path} =~ m{^/api/data} && $_[0]{status} =~ /^[1-4]/ });
my $n0 = $answered->();
my $t_go = $load->go;
ok(poll_until(30, sub { $answered->() >= $n0 + 100 }), 'the load runs before the first kill');

# One write worker, then one read worker.
my $dt1;
for my $pool (qw(write kvapi)) {
    my @p = $s->worker_pids($pool);
    my $victim = $p[ int rand @p ];
    kill KILL => $victim;
    my ($dt) = respawned($pool, $WORKERS, [$victim], 10);
    ok(defined $dt, "killed $pool worker $victim was replaced")
        or diag 'workers now: ' . join ' ', $s->worker_pids($pool);
    $dt1 //= $dt;
    my $n1 = $answered->();
    ok(poll_until(30, sub { $answered->() >= $n1 + 100 }), "the load goes on after the $pool worker's respawn");
}

# Every worker of the three pools at once.
my @all = map { $s->worker_pids($_) } qw(kvapi write auth);
my $t_kill2 = time;
kill KILL => @all;
my ($dt2, @data2) = respawned('kvapi', $WORKERS, \@all, 10);
my ($dt4) = respawned('write', $WORKERS, \@all, 10);
my ($dt3, @auth2) = respawned('auth', scalar @auth0, \@all, 10);
ok(defined $dt2, 'all read workers replaced')
    or diag 'read workers now: ' . join ' ', $s->worker_pids('kvapi');
ok(defined $dt4, 'all write workers replaced')
    or diag 'write workers now: ' . join ' ', $s->worker_pids('write');
ok(defined $dt3, 'all auth workers replaced')
    or diag 'auth workers now: ' . join ' ', $s->worker_pids('auth');
my $t_back = time;
# Enough answers counted from 0.5 s after the respawn (the grace of the
# checks below) for "load went on": at most 7 were in flight then.
my $n2;
ok(poll_until(30, sub {
    $n2 //= $answered->() if time > $t_back + 0.5;
    defined $n2 && $answered->() >= $n2 + 40 }), 'the load goes on after all were respawned');
$load->stop;
my $recs = $load->finish;
is_deeply([ $load->client_failures ], [], 'load clients ran cleanly');

my $kills = 2 + @all;
my $sum = KVLoad::summary($recs);
my @bad = KVLoad::bad_answers($recs, sub {
    my ($r) = @_;
    return KVLoad::writer_allowed($r) if ($r->{op} // '') ne 'login';
    return $r->{status} == 401
        || ($r->{status} == 503 && ($r->{code} // '') eq 'SERVICE_UNAVAILABLE');
});
is(scalar @bad, 0, 'every answer is the expected one or a JSON 503')
    or diag join "\n", map { KVLoad::fmt_record($_) } @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
is($sum->{transport}, 0, 'nginx answered every request (no transport error)');
my @failed = grep { $_->{status} >= 500 } @$recs;
ok(@failed <= $kills, scalar(@failed) . " requests failed, at most one per killed worker ($kills)")
    or diag join "\n", map { KVLoad::fmt_record($_) } @failed;
my @late = grep { $_->{t0} > $t_back + 0.5 && $_->{status} >= 500 } @$recs;
is(scalar @late, 0, 'once respawned, the workers serve every request')
    or diag join "\n", map { KVLoad::fmt_record($_) } @late;
ok((grep { $_->{t0} > $t_back + 0.5 } @$recs) > 20, 'load went on after the respawn');

my $chk = KVLoad::check_writes($recs, KVLoad::db_state($s, 'f90'), 'f90');
is(scalar @{ $chk->{lost} }, 0, 'no acknowledged write lost')
    or diag join "\n", @{ $chk->{lost} };
is(scalar @{ $chk->{violations} }, 0, 'every read and 404/409 fits the record')
    or diag join "\n", grep { defined } @{ $chk->{violations} }[0 .. 9];
ok($chk->{acked} > 100, "$chk->{acked} writes acknowledged");

# multiwatch logged each death and never gave up on a slot.
my $log = $s->log_text('kvapi');
my $deaths = () = $log =~ /Child\[\d+\] died, respawn|Spawning child\[\d+\] failed, next try/g;
is($deaths, $kills, "multiwatch saw $kills deaths");
unlike($log, qr/died to often/, 'multiwatch never gave up on a worker');
my $res = $s->request(GET => '/api/health');
is($res->{status}, 200, 'healthy afterwards');

diag(sprintf 'workers: %d requests sent, %d answered, %d failed (503), '
        . '%d keep-alive resends; writes acknowledged %d, unknown %d, lost %d; '
        . '%d keys, %d exact; respawn after one kill %.2fs, after all %.2fs/%.2fs; '
        . 'latency %s',
    $sum->{sent}, $sum->{sent} - $sum->{transport}, scalar @failed,
    $sum->{retries}, $chk->{acked}, $chk->{unknown}, scalar @{ $chk->{lost} },
    $chk->{keys}, $chk->{exact}, $dt1 // -1, $dt2 // -1, $dt3 // -1,
    KVLoad::fmt_latency(KVLoad::latency(@$recs)));

done_testing;
