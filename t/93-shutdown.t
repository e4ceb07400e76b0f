# Graceful reload and stop under load.
#
# - nginx -s reload, three times under a write load: not one request
#   fails (a keep-alive connection that nginx closes while idle is opened
#   again, as every HTTP client does; those resends are counted).
# - SIGUSR1 to single write workers in the middle of reading a 1 MB body:
#   each must finish its request and is replaced; not one request may
#   fail.
# - SIGTERM to the write pool (its multiwatch, as script/stack app-down
#   sends it) while four PUTs wait inside MariaDB for row locks that the
#   test holds: each worker finishes its request (200, value stored),
#   then exits.  Requests still queued on the FastCGI socket, which no
#   worker took, get the JSON 503 when the pool is gone.
# - SIGTERM to the auth pool while logins are in bcrypt (cost 12): each
#   gets its token, and the token works.
# - script/stack app-down (nginx QUIT first, then the pools) under load:
#   every request nginx accepted gets its normal answer, none a 5xx; the
#   rest are refused at connect.
use strict;
use warnings;
use IO::Handle;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest qw(poll_until);
use KVLoad;

my $WORKERS = 4;
my $s = KVTest->start(workers => $WORKERS);
my @users = map { $s->new_user('f93') } 1 .. 3;
my @tokens = map { $_->{token} } @users;
my %auth = (Authorization => "Bearer $tokens[0]");
my @report;

sub pool_pid {
    my ($pool) = @_;
    open my $fh, '<', $s->dir . "/run/$pool.pid" or return;
    chomp(my $pid = <$fh> // '');
    return $pid;
}

sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return (<$fh> // '') !~ /\) Z /;
}

sub children_of {
    my ($ppid) = @_;
    my @p;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $f, '<', $stat or next;
        my ($pp) = (<$f> // '') =~ /\) \S (\d+)/ or next;
        push @p, $stat =~ m{(\d+)} if $pp == $ppid;
    }
    return sort { $a <=> $b } @p;
}

sub cpu_ticks {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my @f = split ' ', ((<$fh> // '') =~ /\) (.*)/)[0] // '';
    return ($f[11] // 0) + ($f[12] // 0);
}

sub wait_until {
    my ($limit, $cond) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

# Writers on keys "$prefix..."; with $flush each client writes its log
# line by line, so that the test can read it while the load runs.
sub writers {
    my ($prefix, $clients, $flush) = @_;
    my $w = KVLoad::writer(tokens => \@tokens, prefix => $prefix, keys => 10);
    return KVLoad->start(port => $s->port, clients => $clients // 6,
        deadline => 40, dir => $s->dir . "/load-$prefix",
        run => $flush ? sub { $_[0]{log}->autoflush(1); $w->(@_) } : $w);
}

# Progress is read from nginx's access log, not guessed from time: data
# requests answered below 500.
my $answered = $s->access_counter(sub { $_[0]{path} =~ m{^/api/data} && $_[0]{status} =~ /^[1-4]/ });

# Has signal $sig reached process $pid and is it held there, blocked?
sub pending {
    my ($pid, $sig) = @_;
    my $bit = 1 << ({ USR1 => 10, TERM => 15 }->{$sig} - 1);
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (my $line = <$fh>) {
        return 1 if $line =~ /^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)/ && hex(substr $1, -8) & $bit;
    }
    return 0;
}

sub check_load {
    my ($name, $prefix, $load, $recs) = @_;
    is_deeply([ $load->client_failures ], [], "$name: load clients ran cleanly");
    my $chk = KVLoad::check_writes($recs, KVLoad::db_state($s, $prefix), $prefix);
    is(scalar @{ $chk->{lost} }, 0, "$name: no acknowledged write lost")
        or diag join "\n", @{ $chk->{lost} };
    is(scalar @{ $chk->{violations} }, 0, "$name: every read and 404/409 fits the record")
        or diag join "\n", grep { defined } @{ $chk->{violations} }[0 .. 9];
    return $chk;
}

# --- nginx -s reload under load ---------------------------------------
{
    my $run = $s->dir . '/run';
    my $master = do { open my $fh, '<', "$run/nginx.pid" or die; local $/; <$fh> =~ /(\d+)/; $1 };
    my @old = children_of($master);
    my $load = writers('f93r');
    my $n = $answered->();
    $load->go;
    ok(poll_until(30, sub { $answered->() >= $n + 100 }), 'reload: the load runs');
    for my $i (1 .. 3) {
        my @before = children_of($master);
        system("nginx -p '$run/' -c '$run/nginx.conf' -s reload >>'$run/log/nginx-error.log' 2>&1") == 0
            or fail("nginx -s reload: status $?");
        # Done when every worker from before has left, and the new ones
        # carry the load.
        ok(poll_until(30, sub {
            my %now = map { $_ => 1 } children_of($master);
            %now && !grep { $now{$_} } @before }), "reload $i: the old nginx workers left");
        $n = $answered->();
        ok(poll_until(30, sub { $answered->() >= $n + 100 }), "reload $i: the load goes on");
    }
    $load->stop;
    my $recs = $load->finish;
    my @new = children_of($master);
    ok(!grep({ my $o = $_; grep { $_ == $o } @new } @old), 'nginx workers were replaced');
    my $sum = KVLoad::summary($recs);
    my @bad = KVLoad::bad_answers($recs, sub { KVLoad::writer_allowed($_[0]) && $_[0]{status} < 500 });
    is(scalar @bad, 0, 'reload: not one request failed')
        or diag join "\n", map { KVLoad::fmt_record($_) } @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    my $chk = check_load('reload', 'f93r', $load, $recs);
    push @report, sprintf 'reload x3: %d requests sent, %d answered, %d failed, '
            . '%d reconnects (closed keep-alive), %d resends; writes acknowledged %d, lost %d; latency %s',
        $sum->{sent}, $sum->{sent} - $sum->{transport}, $sum->{failed},
        $sum->{reconnects}, $sum->{retries}, $chk->{acked}, scalar @{ $chk->{lost} },
        KVLoad::fmt_latency(KVLoad::latency(@$recs));
}

# --- SIGUSR1 to single workers reading a 1 MB body ---------------------
# SIGUSR1 is the graceful signal multiwatch forwards on TERM.  Sent to one
# worker, that worker must finish its request and exit, and multiwatch
# starts another (at most twice per slot: see t/90); the pool keeps
# serving, so not one request may fail.  The signal is aimed: the test
# watches /proc/PID/syscall and sends it while the worker waits in read()
# on its FastCGI connection, i.e. in the middle of a request body.
{
    $s->allow_log(qr/Child\[\d+\] died, respawn$/,
        qr/Spawning child\[\d+\] failed, next try$/);
    my $big = 'y' x 1_000_000;
    for my $i (0 .. 5) {
        $s->request(POST => '/api/data', {json => {key => "f93big$i", value => $big},
            headers => $s->auth($tokens[ $i % @tokens ])})->{status} == 201
            or die "cannot create f93big$i";
    }
    my $load = KVLoad->start(port => $s->port, clients => 6, deadline => 40,
        dir => $s->dir . '/usr1',
        run => sub {
            my ($c, $i) = @_;
            my %a = (Authorization => "Bearer $tokens[$i % @tokens]");
            while ($c->running) {
                $c->request(PUT => "/api/data/f93big$i", op => 'update',
                    key => "f93big$i", val => 'big', headers => \%a,
                    body => qq({"value":"$big"}));
            }
        });
    $load->go;
    my @p = $s->worker_pids('write');
    my %slot = map { $p[$_] => $_ } 0 .. $#p;
    my $x86 = (POSIX::uname())[4] eq 'x86_64';
    my (%hits, %dbfds, $signals);
    my $aimed = 0;
    # A worker's MariaDB sockets: the client ends, which have no path in
    # /proc/net/unix (its FastCGI connection has the pool socket's path).
    my $db_fds = sub {
        my ($pid) = @_;
        my %path;
        open my $u, '<', '/proc/net/unix' or return {};
        while (<$u>) {
            my @f = split ' ';
            $path{ $f[6] } = $f[7] // '' if defined $f[6];
        }
        opendir my $d, "/proc/$pid/fd" or return {};
        my %db;
        for my $fd (grep { /^\d+$/ && $_ > 0 } readdir $d) {
            my ($ino) = (readlink("/proc/$pid/fd/$fd") // '') =~ /^socket:\[(\d+)\]/ or next;
            $db{$fd} = 1 if ($path{$ino} // '') eq '';
        }
        return \%db;
    };
    for (1 .. 2 * $WORKERS) {
        my @cur = grep { ($hits{ $slot{$_} } // 0) < 2 } $s->worker_pids('write')
            or last;
        my ($v, $t0) = (undef, time);
        FIND: while (time - $t0 < 3) {
            for my $pid (@cur) {
                open my $f, '<', "/proc/$pid/syscall" or next;
                my $sc = <$f> // '';
                # read() (syscall 0 on x86-64) on a socket not MariaDB's.
                my ($fd) = $x86 && $sc =~ /^0 0x([0-9a-f]+) / ? hex $1 : -1;
                if ($fd > 2
                    && (readlink("/proc/$pid/fd/$fd") // '') =~ /^socket:/
                    && !($dbfds{$pid} //= $db_fds->($pid))->{$fd}) {
                    ($v, $aimed) = ($pid, $aimed + 1);
                    last FIND;
                }
            }
        }
        $v //= $cur[0];
        $hits{ $slot{$v} }++;
        kill USR1 => $v;
        $signals++;
        my @new;
        wait_until(5, sub {
            @new = $s->worker_pids('write');
            @new == $WORKERS && !grep { $_ == $v } @new });
        $slot{$_} //= $slot{$v} for @new;
        ok(poll_until(20, sub {
            my $log = $s->log_text('kvapi');
            !grep { $log !~ /kvapi\[$_\] info: worker ready/ } @new }),
            "USR1 to $v: its replacement is ready");
    }
    $load->stop;
    my $recs = $load->finish;
    is_deeply([ $load->client_failures ], [], 'USR1: load clients ran cleanly');
    my %st;
    $st{ $_->{status} . ($_->{code} ? " $_->{code}" : '') }++ for @$recs;
    my $stopped = () = $s->log_text('kvapi') =~ /info: worker stopping after/g;
    is($stopped, $signals, "$signals workers stopped gracefully and were replaced");
    is(scalar(grep { $_->{status} == 0 } @$recs), 0, 'USR1: no transport error');
    my $short = $s->sql("SELECT COUNT(*) FROM data WHERE k LIKE 'f93big%' AND LENGTH(v) <> 1000002")->[0][0];
    is($short, 0, 'USR1: no stored value was cut short');
    # Whether or not a signal was caught landing in a body read (on a
    # busy machine the workers may never be seen waiting there; the
    # syscall number is x86-64's), every request must succeed.
    my @bad = grep { $_->{status} != 200 } @$recs;
    is(scalar @bad, 0, "USR1: every request answered 200 ($aimed signals aimed at a body read)")
        or diag join "\n", map { KVLoad::fmt_record($_) } @bad[0 .. ($#bad > 2 ? 2 : $#bad)];
    push @report, sprintf 'USR1 to %d single workers (%d aimed at a body read) under 1 MB PUTs: '
            . '%d requests, answers: %s',
        $signals, $aimed, scalar @$recs, join(', ', map { "$_ x$st{$_}" } sort keys %st);
}

# --- SIGTERM to the write pool, requests blocked in MariaDB ------------
{
    my @lk = map { "f93lock$_" } 0 .. $WORKERS - 1;
    for my $k (@lk, 'f93q0', 'f93q1') {
        is($s->request(POST => '/api/data', {json => {key => $k, value => 'old'},
            headers => \%auth})->{status}, 201, "created $k");
    }
    # An admin session holds the rows' locks until we roll it back.
    my $var = $s->db_var;
    # (Its output must not reach our stdout, the TAP stream.)
    open(my $lock, '|-', 'sh', '-c', 'exec "$@" >/dev/null', 'sh', 'mariadb', '--no-defaults', "--socket=$var/run/mysqld.sock",
        '--user=' . getpwuid($<), '--batch', $s->db_name) or die "mariadb: $!";
    $lock->autoflush(1);
    print $lock "BEGIN;\nSELECT COUNT(*) FROM data WHERE k IN ("
        . join(',', map { "'$_'" } @lk) . ") FOR UPDATE;\n";
    ok(wait_until(10, sub {
        $s->sql('SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_locked > 0')->[0][0] > 0 }),
        'an admin session holds the row locks');
    # A worker's UPDATE still running while the admin session holds every
    # row lock is waiting for one.  (INNODB_TRX does not always list such
    # a waiter: an UPDATE whose WHERE has a subquery on tokens was missing
    # from it, though SHOW ENGINE INNODB STATUS showed it in LOCK WAIT.)
    my $waiting = sub {
        $s->sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '"
            . $s->db_user . "' AND COMMAND = 'Execute' AND INFO LIKE 'UPDATE data %'")->[0][0];
    };
    my $one = sub {
        my ($keys, $dir) = @_;
        KVLoad->start(port => $s->port, clients => scalar @$keys, deadline => 30,
            dir => $s->dir . "/$dir",
            run => sub {
                my ($c, $i) = @_;
                $c->request(PUT => "/api/data/$keys->[$i]", op => 'update',
                    key => $keys->[$i], val => "new$i", headers => \%auth,
                    body => qq({"value":"new$i"}));
            });
    };
    my $blocked = $one->(\@lk, 'term-blocked');
    $blocked->go;
    ok(wait_until(10, sub { $waiting->() == $WORKERS }),
        "all $WORKERS write workers are inside MariaDB, waiting for a row lock")
        or diag explain $s->sql('SELECT USER, COMMAND, STATE, LEFT(INFO, 40) FROM information_schema.PROCESSLIST');
    # Two more, which no worker can take: they queue on the socket.
    # /proc/net/unix lists a connection that no one accepted yet with
    # state 02 (SS_CONNECTING) and the listening socket's path.
    my $sock = $s->dir . '/run/write.sock';
    my $unaccepted = sub {
        open my $u, '<', '/proc/net/unix' or return 0;
        return scalar grep { my @f = split ' '; ($f[5] // '') eq '02' && ($f[7] // '') eq $sock } <$u>;
    };
    my $q0 = $unaccepted->();
    my $queued = $one->([ 'f93q0', 'f93q1' ], 'term-queued');
    $queued->go;
    ok(poll_until(10, sub { $unaccepted->() >= $q0 + 2 }),
        'the two requests wait on the FastCGI socket, unaccepted');
    my @workers = $s->worker_pids('write');
    my $mw = pool_pid('write') or die "no multiwatch pid for the write pool\n";
    my $t_term = time;
    kill TERM => $mw;
    # multiwatch passes TERM on as SIGUSR1, which a worker blocks while
    # it has a request in hand.
    ok(poll_until(10, sub { !grep { !pending($_, 'USR1') } @workers }),
        'TERM reached every worker (SIGUSR1 pending, held while it works)');
    is(scalar(grep { alive($_) } @workers), $WORKERS,
        'after TERM the workers are still finishing their requests');
    print $lock "ROLLBACK;\n";
    close $lock;
    my @b = @{ $blocked->finish };
    my @q = @{ $queued->finish };
    ok(wait_until(10, sub { !alive($mw) && !grep { alive($_) } @workers }),
        'then every worker and multiwatch exited');
    is(join(' ', map { $_->{status} } @b), join(' ', (200) x $WORKERS),
        'every request in a worker when TERM came was answered 200');
    my %db = map { $_->[0] => $_->[1] } @{ $s->sql(
        "SELECT k, v FROM data WHERE user_id = $users[0]{user_id} AND k LIKE 'f93lock%'") };
    is_deeply(\%db, { map { ($lk[$_] => qq("new$_")) } 0 .. $#lk }, 'and its value is stored');
    my @qs = map { $_->{status} } @q;
    ok(!grep({ $_ != 200 && $_ != 503 } @qs), "queued requests: 200 or the JSON 503 (got @qs)");
    my $res = $s->request(PUT => '/api/data/f93q0', {headers => \%auth, json => {value => 1}});
    $s->error_is($res, 'SERVICE_UNAVAILABLE', 'with the write pool stopped, nginx answers a write the JSON 503');
    $res = $s->request(GET => '/api/data/f93lock0', {headers => \%auth});
    is_deeply([ $res->{status}, $res->{json} ], [ 200, {status => 'success', data => {key => 'f93lock0', value => 'new0'}} ],
        'and the read pool still answers a read');
    push @report, sprintf 'write pool TERM: %d of %d requests blocked in MariaDB answered 200 '
            . '(%.2fs after TERM); queued on the socket: %s',
        scalar(grep { $_->{status} == 200 } @b), scalar @b,
        (sort { $b <=> $a } map { $_->{t1} } @b)[0] - $t_term, "@qs";
}

# --- SIGTERM to the auth pool, logins inside bcrypt --------------------
{
    $s->restart_app(bcrypt_cost => 12);
    # A password hashed at cost 12 (a login costs what the stored hash says).
    my $slow = {username => 'f93slow_' . int(rand 1e6), password => 'correct horse 12'};
    is($s->register(%$slow, email => "$slow->{username}\@example.com",
        full_name => 'Slow')->{status}, 201, 'a user with a cost-12 hash');
    my @auth = $s->worker_pids('auth');
    my $n = @auth;
    # A worker makes a dummy hash at the configured cost before it serves.
    ok(wait_until(20, sub {
        my $log = $s->log_text('kvapi');
        !grep { $log !~ /kvapi\[$_\] info: worker ready/ } @auth }),
        'the auth workers are ready');
    my %cpu0 = map { $_ => cpu_ticks($_) } @auth;
    my $load = KVLoad->start(port => $s->port, clients => $n, deadline => 30,
        dir => $s->dir . '/term-auth',
        run => sub {
            my ($c, $i) = @_;
            my $u = $slow;
            $c->request(POST => '/api/token', op => 'login',
                body => qq({"username":"$u->{username}","password":"$u->{password}"}));
        });
    $load->go;
    # Every auth worker is burning CPU: it holds a login.
    ok(wait_until(5, sub { !grep { cpu_ticks($_) <= $cpu0{$_} } @auth }),
        "all $n auth workers are inside bcrypt");
    my $mw = pool_pid('auth') or die "no multiwatch pid for the auth pool\n";
    my $t_term = time;
    kill TERM => $mw;
    my @r = @{ $load->finish };
    is(join(' ', map { $_->{status} } @r), join(' ', (200) x $n),
        'every login in a worker when TERM came was answered 200');
    my @tok = map { ($_->{body} // '') =~ /"access_token":"([^"]+)"/ ? $1 : () } @r;
    is(scalar @tok, $n, 'each with a token');
    for my $t (@tok) {
        $s->error_is($s->request(GET => '/api/data/f93none', {headers => $s->auth($t)}),
            'KEY_NOT_FOUND', 'the token works');
    }
    ok(wait_until(10, sub { !alive($mw) && !grep { alive($_) } @auth }),
        'the auth workers and their multiwatch exited');
    push @report, sprintf 'auth pool TERM: %d of %d logins in bcrypt (cost 12) answered 200, '
            . 'last %.2fs after TERM',
        scalar(grep { $_->{status} == 200 } @r), $n,
        (sort { $b <=> $a } map { $_->{t1} } @r)[0] - $t_term;
    $s->restart_app(bcrypt_cost => 4);
}

# --- script/stack app-down under load ----------------------------------
{
    my $load = writers('f93d', 6, 1);
    my $n = $answered->();
    $load->go;
    ok(poll_until(30, sub { $answered->() >= $n + 100 }), 'app-down: the load runs');
    my $t_q = time;
    $s->app_down;
    my $t_d = time;
    # The clients go on and meet the closed port: each logs a request
    # refused at connect.
    my $refused_clients = sub {
        my %c;
        for my $f (glob $s->dir . '/load-f93d/client-*.log') {
            open my $fh, '<', $f or next;
            while (my $line = <$fh>) {
                my @v = split /\t/, $line, -1;
                $c{$f} = 1 if ($v[9] // '') eq '0' && ($v[12] // '') =~ /^connect: /;
            }
        }
        return scalar keys %c;
    };
    ok(poll_until(10, sub { $refused_clients->() == 6 }), 'app-down: every client met a refused connection');
    $load->stop;
    my $recs = $load->finish;
    my @answered = grep { $_->{status} > 0 } @$recs;
    my @bad = KVLoad::bad_answers(\@answered, sub { KVLoad::writer_allowed($_[0]) && $_[0]{status} < 500 });
    is(scalar @bad, 0, 'app-down: every request nginx accepted got its normal answer')
        or diag join "\n", map { KVLoad::fmt_record($_) } @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    my @refused = grep { $_->{status} == 0 } @$recs;
    my @odd = grep { $_->{err} !~ /^connect: / || $_->{t1} < $t_q } @refused;
    is(scalar @odd, 0, 'app-down: the other requests were refused at connect, after the stop began')
        or diag join "\n", map { KVLoad::fmt_record($_) } @odd[0 .. ($#odd > 9 ? 9 : $#odd)];
    my @drained = grep { $_->{t0} < $t_q && $_->{t1} > $t_q && $_->{status} > 0 } @$recs;
    my $chk = check_load('app-down', 'f93d', $load, $recs);
    push @report, sprintf 'app-down: %d requests sent, %d answered (all normally), '
            . '%d in flight when the stop began all completed, %d refused at connect; '
            . 'stop took %.2fs; writes acknowledged %d, lost %d',
        scalar @$recs, scalar @answered, scalar @drained, scalar @refused,
        $t_d - $t_q, $chk->{acked}, scalar @{ $chk->{lost} };
}

diag($_) for @report;
done_testing;
